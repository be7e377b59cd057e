"""long_ner as a transformer-backed pipe that other components listen to
(the `[trf]` extra, spacy-transformers).

With `store_trf_data = true`, long_ner writes spacy-transformers'
`TransformerData` to `doc._.trf_data`: the last hidden state of the
checkpoint's encoder for the doc's wordpieces (each wordpiece from the
window that owns it, as for the logits) and the token -> wordpiece
alignment. A downstream component whose model uses
`spacy-transformers.TransformerListener.v1` with `upstream = "long_ner"`
then predicts from it without a second forward pass. It trains on it with
long_ner frozen and listed in `annotating_components` (long_ner's own loss
and the listener's gradients are not joined: long_ner does not learn from
the downstream component).

spacy-transformers is imported only here, and only where a pipe asks for it.
"""

from typing import Any, List, Optional

import numpy as np

from .errors import Errors

LISTENER_NAME = "transformer-listener"


def require_spacy_transformers(component: str):
    """The spacy_transformers module, or a coded error naming the extra."""
    try:
        import spacy_transformers
        from spacy_transformers.pipeline_component import install_extensions
    except ImportError as e:
        raise ImportError(Errors.E022.format(component=component, reason=e)) from e
    install_extensions()
    return spacy_transformers


def is_listener(node, names) -> bool:
    """Whether a thinc node is a spacy-transformers TransformerListener
    listening to one of `names` ("*" listens to any upstream)."""
    return getattr(node, "name", None) == LISTENER_NAME and getattr(node, "upstream_name", None) in names


def make_trf_data(wp_token: np.ndarray, input_ids: np.ndarray, hidden: np.ndarray, n_tokens: int, strings: Optional[List[str]] = None) -> Any:
    """A doc's TransformerData: its wordpieces as one sequence (the windows
    stitched, each wordpiece from the window that owns it), their hidden
    states (1, n_wp, width), and per token the indices of its wordpieces
    (none for whitespace tokens)."""
    from spacy_transformers.data_classes import TransformerData, WordpieceBatch
    from thinc.api import Ragged
    from transformers.modeling_outputs import BaseModelOutput

    n_wp = len(wp_token)
    lengths = np.bincount(wp_token, minlength=n_tokens).astype("int32") if n_wp else np.zeros(n_tokens, dtype="int32")
    align = Ragged(np.arange(n_wp, dtype="int32"), lengths)
    wordpieces = WordpieceBatch(
        strings=[list(strings) if strings is not None else [""] * n_wp],
        input_ids=np.asarray(input_ids, dtype="int32").reshape(1, n_wp),
        attention_mask=np.ones((1, n_wp), dtype="float32"),
        lengths=[n_wp],
        token_type_ids=None,
    )
    hidden = np.asarray(hidden, dtype="float32")
    output = BaseModelOutput(last_hidden_state=hidden.reshape(1, n_wp, hidden.shape[-1]))
    return TransformerData(wordpieces=wordpieces, model_output=output, align=align)
