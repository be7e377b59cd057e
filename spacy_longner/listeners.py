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

from typing import TYPE_CHECKING, Any, Optional

import numpy as np

from .errors import Errors, reason

LISTENER_NAME = "transformer-listener"


def require_spacy_transformers(component: str):
    """The spacy_transformers module, or a coded error naming the extra."""
    try:
        import spacy_transformers
        from spacy_transformers.pipeline_component import install_extensions
    except ImportError as e:
        raise ImportError(Errors.E022.format(component=component, reason=reason(e))) from e
    install_extensions()
    return spacy_transformers


def is_listener(node, names) -> bool:
    """Whether a thinc node is a spacy-transformers TransformerListener
    listening to one of `names` ("*" listens to any upstream)."""
    return getattr(node, "name", None) == LISTENER_NAME and getattr(node, "upstream_name", None) in names


def make_trf_data(
    wp_token: np.ndarray, input_ids: np.ndarray, hidden: np.ndarray, n_tokens: int, strings: Optional[list[str]] = None
) -> Any:
    """A doc's TransformerData: its wordpieces as one sequence (the windows
    stitched, each wordpiece from the window that owns it), their hidden
    states (1, n_wp, width), and per token the indices of its wordpieces
    (none for whitespace tokens)."""
    from spacy_transformers.data_classes import TransformerData, WordpieceBatch
    from thinc.api import Ragged
    from transformers.modeling_outputs import BaseModelOutput

    n_wp = len(wp_token)
    lengths = np.bincount(wp_token, minlength=n_tokens).astype("int32") if n_wp else np.zeros(n_tokens, dtype="int32")
    align = Ragged(np.arange(n_wp, dtype="int32"), lengths)  # type: ignore[arg-type]  # numpy arrays, as thinc takes
    wordpieces = WordpieceBatch(
        strings=[list(strings) if strings is not None else [""] * n_wp],
        input_ids=np.asarray(input_ids, dtype="int32").reshape(1, n_wp),
        attention_mask=np.ones((1, n_wp), dtype="float32"),
        lengths=[n_wp],
        token_type_ids=None,
    )
    hidden = np.asarray(hidden, dtype="float32")
    # spacy-transformers holds numpy (or cupy) arrays where transformers types a Tensor.
    output = BaseModelOutput(last_hidden_state=hidden.reshape(1, n_wp, hidden.shape[-1]))  # type: ignore[arg-type]
    return TransformerData(wordpieces=wordpieces, model_output=output, align=align)


class ListenedToMixin:
    """spaCy's listened-to protocol (spacy.ty.ListenedToComponent), as
    spacy-transformers' Transformer implements it, for LongNER: which
    TransformerListener layers of other components read this component's
    encoder output (`store_trf_data`). The class that mixes it in has
    `name`, `cfg`, `model` and `hidden_width`, and a `listener_map`."""

    listener_map: dict[str, list[Any]]
    if TYPE_CHECKING:
        name: str
        cfg: dict[str, Any]
        model: Any

        @property
        def hidden_width(self) -> int: ...

    @property
    def listeners(self) -> list[Any]:
        return [m for c in self.listening_components for m in self.listener_map[c]]

    @property
    def listening_components(self) -> list[str]:
        return list(self.listener_map.keys())

    def add_listener(self, listener, component_name: str) -> None:
        self.listener_map.setdefault(component_name, [])
        if listener not in self.listener_map[component_name]:
            self.listener_map[component_name].append(listener)
        self.set_listener_widths()

    def remove_listener(self, listener, component_name: str) -> bool:
        if listener in self.listener_map.get(component_name, []):
            self.listener_map[component_name].remove(listener)
            if not self.listener_map[component_name]:
                del self.listener_map[component_name]
            return True
        return False

    def find_listeners(self, component) -> None:
        """Register the TransformerListener layers of `component` whose
        upstream is this component ("*": any upstream, taken only where this
        component shares its encoder output)."""
        from thinc.api import Model

        model = getattr(component, "model", None)
        if not isinstance(model, Model):
            return
        for node in model.walk():
            if is_listener(node, (self.name,)) and not self.cfg["store_trf_data"]:
                raise ValueError(Errors.E023.format(listener=component.name, component=self.name))
            if self.cfg["store_trf_data"] and is_listener(node, ("*", self.name)):
                self.add_listener(node, component.name)

    def set_listener_widths(self) -> None:
        """Give listeners the encoder's width once the checkpoint is loaded
        (a listener reads it even at inference, for docs without trf_data)."""
        if self.model.attrs["state"] is None or not self.listener_map:
            return
        width = self.hidden_width
        for listener in self.listeners:
            if listener.has_dim("nO") is None:
                listener.set_dim("nO", width)

    def doc_trf_data(self, out) -> Any:
        """A doc's TransformerData from its DocLogits (model.py)."""
        hidden = out.hidden
        if hidden is None:  # a doc with no wordpieces
            hidden = np.zeros((0, self.hidden_width), dtype="float32")
        input_ids = out.input_ids if out.input_ids is not None else np.zeros(0, dtype="int64")
        return make_trf_data(out.wp_token, input_ids, hidden, out.n_tokens)
