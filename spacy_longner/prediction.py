"""From a buffer of docs to their entities as plain data (what
`LongNER.predict` returns): the forward pass (model.py), then one softmax
and aggregation over all the docs' wordpieces, one decoding over all their
tokens, and label mapping on arrays. Nothing here touches a Doc's
annotations; write.py does."""

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Callable, Optional

import numpy as np
from spacy.tokens import Doc
from thinc.api import Model

from .align import token_probs
from .arrays import offsets
from .batching import PlannedBuffer
from .calibration import Calibration
from .decode import EntityArrays, TagSet, decode_buffer
from .model import predict_buffer


@dataclass
class BufferPrediction:
    """The entities of a list of docs as arrays (after label mapping;
    `entities.type_id` indexes `labels`), and per doc its token
    probabilities and TransformerData where asked for."""

    n_docs: int
    entities: EntityArrays
    labels: list[str]
    token_offsets: np.ndarray  # (n_docs + 1,) where each doc's tokens start in the buffer
    token_probs: Optional[list[np.ndarray]] = None
    trf_data: Optional[list[object]] = None

    def __len__(self) -> int:
        return self.n_docs

    def doc_bounds(self) -> np.ndarray:
        """Where each doc's entities start in `entities`, and the end."""
        return np.searchsorted(self.entities.doc, np.arange(self.n_docs + 1))


def label_table(
    types: Sequence[str], label_map: dict[str, str], ignore_labels: Sequence[str]
) -> tuple[list[str], np.ndarray]:
    """The label of each entity type after `label_map`, and which types are
    kept (`ignore_labels` names types before mapping)."""
    ignored = set(ignore_labels)
    labels = [label_map.get(t, t) for t in types]
    keep = np.array([t not in ignored for t in types], dtype=bool)
    return labels, keep


def predict_entities(
    model: Model,
    docs: list[Doc],
    tagset: TagSet,
    cfg: dict[str, Any],
    *,
    planned: Optional[PlannedBuffer] = None,
    trf_data: Optional[Callable] = None,
    calibration: Optional[Calibration] = None,
) -> BufferPrediction:
    """The entities of `docs`, computed for all of them at once.

    cfg: the component's settings (aggregation, decoding, label_map,
        ignore_labels, token_probs, threshold, thresholds).
    planned: the docs' PlannedBuffer, where it was made ahead.
    trf_data: where given, called with each doc's DocLogits to make its
        TransformerData (store_trf_data).
    calibration: where given, each entity's score is its calibrated
        probability of being exactly right; else the mean probability of
        its tags. Entities scoring below the threshold of their label are
        left out."""
    labels, keep_type = label_table(tagset.types, cfg["label_map"], cfg["ignore_labels"])
    out = predict_buffer(model, docs, planned)
    encs = out.encs
    doc_offsets = offsets([enc.n_tokens for enc in encs])
    # Each wordpiece's token in the buffer: its token in its doc plus the
    # doc's offset (one repeat, not an addition per doc).
    n_wp = np.fromiter((enc.n_wp for enc in encs), dtype=np.int64, count=len(encs))
    wp_token = np.concatenate([np.zeros(0, np.int64)] + [enc.wp_token for enc in encs]) + np.repeat(
        doc_offsets[:-1], n_wp
    )
    probs, visible = token_probs(out.logits, wp_token, int(doc_offsets[-1]), cfg["aggregation"])
    confidence = "marginal" if calibration is not None else "mean"
    _, ents = decode_buffer(probs, visible, doc_offsets, tagset, decoding=cfg["decoding"], confidence=confidence)
    if not keep_type.all():
        ents = ents.select(keep_type[ents.type_id])
    if calibration is not None and len(ents):
        ents.score = calibration.apply(ents.score, labels, ents.type_id)
    cut = np.array([cfg["thresholds"].get(label, cfg["threshold"]) for label in labels], dtype=np.float64)
    if len(ents) and (cut > 0).any():
        ents = ents.select(ents.score >= cut[ents.type_id])
    per_doc_probs = np.split(probs, doc_offsets[1:-1]) if cfg["token_probs"] else None
    trf = [trf_data(o) for o in out.split()] if trf_data is not None else None
    return BufferPrediction(len(docs), ents, labels, doc_offsets, per_doc_probs, trf)
