"""Training long_ner: the tags a head is built for, gold targets per
wordpiece, the token-classification loss and its gradient, and gradient
clipping. `LongNER.initialize`, `update` and `get_loss` call these."""

from collections.abc import Iterable, Sequence
from typing import Optional

import numpy as np
from spacy.attrs import IS_SPACE
from spacy.training import Example

from .align import first_wordpiece
from .arrays import softmax
from .checkpoint import HFState, resize_head
from .decode import TagSet, parse_tagset, split_label
from .errors import Errors


def train_scheme(state: HFState, scheme: str) -> str:
    """The scheme a new head is built in: the `scheme` setting, else the
    current head's, else IOB2."""
    if scheme != "auto":
        return scheme
    if state.has_head:
        return parse_tagset(state.labels).scheme
    return "IOB2"


def fit_head(state: HFState, labels: Optional[Sequence[str]], added: Sequence[str], scheme: str) -> None:
    """Give the checkpoint a head for the entity types to train: `labels`
    (from the data or `spacy init labels`; None: none given) and those added
    with `add_label`. A head that already has exactly these types is kept;
    otherwise it is resized (rows of known labels kept). With nothing to
    train and no head, E004; with an empty set of types, E014."""
    current = sorted(parse_tagset(state.labels, scheme).types) if state.has_head else None
    if labels is None and not added:
        if not state.has_head:
            raise ValueError(Errors.E004.format(path=state.source, labels=state.labels))
        return
    # Data without entities (spaCy's stand-in examples) keeps the head's types.
    wanted = set(labels or ()) or set(current or ())
    wanted |= set(added)
    if not wanted:
        # A trained head with generic labels wants its labels named, not data.
        raise ValueError(
            (Errors.E004 if state.head_weights else Errors.E014).format(path=state.source, labels=state.labels)
        )
    if current != sorted(wanted):
        resize_head(state, tag_labels(sorted(wanted), train_scheme(state, scheme)))


def token_classification_loss(
    examples: Iterable[Example], outputs, tagset: TagSet, loss_on: str, xp
) -> tuple[float, list, dict[str, int]]:
    """Cross-entropy of the model's wordpiece logits against the gold tags,
    averaged over the wordpieces that count: each token's first
    (`loss_on = "first"`) or all of its wordpieces ("all").

    RETURNS (tuple): the loss, the gradient of each output's logits, and the
        gold labels the model does not have, with their counts (left out of
        the loss)."""
    targets: list = []
    unknown: dict[str, int] = {}
    for eg, out in zip(examples, outputs):
        gold = gold_label_ids(eg, tagset, unknown)
        if loss_on == "first":
            idx = first_wordpiece(out.wp_token)
            wp_target = np.full(len(out.wp_token), -1, dtype=np.int64)
            wp_target[idx] = gold[out.wp_token[idx]]
        else:
            wp_target = gold[out.wp_token] if len(out.wp_token) else np.zeros(0, np.int64)
        targets.append(wp_target)
    n_counted = max(1, sum(int((t >= 0).sum()) for t in targets))
    loss = 0.0
    grads = []
    for out, target in zip(outputs, targets):
        logits = out.logits
        if len(target) == 0:
            grads.append(logits * 0)
            continue
        probs = softmax(logits, blas_sum=False)
        mask = xp.asarray(target >= 0)
        tgt = xp.asarray(np.where(target >= 0, target, 0))
        rows = xp.arange(len(target))
        p_true = probs[rows, tgt]
        loss += float((-xp.log(xp.clip(p_true, 1e-12, None)) * mask).sum())
        d = probs
        d[rows, tgt] -= 1.0
        d *= mask[:, None]
        grads.append(d / n_counted)
    return loss / n_counted, grads, unknown


def clip_gradients(state: Optional[HFState], max_norm: float) -> None:
    """Clip the gradient's global norm over all the model's parameters to
    `max_norm` (as torch's clip_grad_norm_ in a Hugging Face Trainer run;
    thinc's optimizer `grad_clip` clips each parameter on its own). 0: no
    clipping."""
    if max_norm <= 0 or state is None:
        return
    import torch

    grads = [p for p in state.hf_model.parameters() if p.grad is not None]
    if grads:
        torch.nn.utils.clip_grad_norm_(grads, max_norm)


def tag_labels(types: Sequence[str], scheme: str) -> list[str]:
    """The model labels for entity types under a scheme, O first."""
    prefixes = {"IOB1": "BI", "IOB2": "BI", "BIOES": "BIES", "BILOU": "BILU", "IO": ""}[scheme]
    labels = ["O"]
    for t in sorted(types):
        if prefixes:
            labels.extend(f"{p}-{t}" for p in prefixes)
        else:
            labels.append(t)
    return labels


def gold_label_ids(eg: Example, tagset: TagSet, unknown: dict[str, int]) -> np.ndarray:
    """Gold label id per predicted-doc token, -1 where gold is missing or
    misaligned (left out of the loss) or the label is not in the model."""
    biluo = eg.get_aligned_ner()
    label_id = {lab: i for i, lab in enumerate(tagset.labels)}
    out = np.full(len(biluo), -1, dtype=np.int64)
    # Whitespace tokens get no wordpiece: the model's tag sequence runs over
    # the other tokens as if they were not there, so they are skipped here too
    # (an O on a line break must not separate two IOB1 entities).
    space = eg.predicted.to_array([IS_SPACE]).astype(bool) if len(biluo) else np.zeros(0, bool)
    prev_type = None
    for i, tag in enumerate(biluo):
        if space[i]:
            continue
        if tag is None or tag == "-" or tag == "":
            prev_type = None
            continue
        if tag == "O":
            out[i] = tagset.o_index
            prev_type = None
            continue
        p, t = split_label(tag)
        assert p is not None  # spaCy's BILUO gold tags all have a prefix
        label = convert_biluo(p, t, tagset.scheme, prev_type)
        prev_type = t if p in ("L", "U") else None
        if label in label_id:
            out[i] = label_id[label]
        else:
            unknown[t] = unknown.get(t, 0) + 1
    return out


_BILUO_TO = {
    "BIOES": {"B": "B", "I": "I", "L": "E", "U": "S"},
    "BILOU": {"B": "B", "I": "I", "L": "L", "U": "U"},
    "IOB2": {"B": "B", "I": "I", "L": "I", "U": "B"},
}


def convert_biluo(prefix: str, etype: str, scheme: str, prev_closed_type: Optional[str]) -> str:
    """A BILUO gold tag in the model's scheme. `prev_closed_type` is the type
    of an entity that ended on the token before (for IOB1's B-)."""
    if scheme == "IO":
        return etype
    if scheme in _BILUO_TO:
        return f"{_BILUO_TO[scheme][prefix]}-{etype}"
    # IOB1: I- everywhere, B- only where an entity starts right after another
    # entity of the same type.
    if prefix in ("B", "U") and prev_closed_type == etype:
        return f"B-{etype}"
    return f"I-{etype}"
