"""The component's settings: their allowed values, checked once when the
component is built, with a coded error naming the setting to change; and
how the component is being built (by hand or from a config)."""

import sys
from collections.abc import Sequence
from types import FrameType
from typing import Any, Optional

from spacy.language import Language

from .align import AGGREGATIONS
from .decode import DECODINGS, SCHEMES
from .errors import Errors

EXISTING = ("overwrite", "keep", "fill")
PREFETCH = ("auto", "on", "off")
OUTPUTS = ("ents", "spans")
LOSS_ON = ("first", "all")


def component_settings(
    name: str,
    *,
    aggregation: str,
    scheme: str,
    decoding: str,
    label_map: Optional[dict[str, str]],
    ignore_labels: Sequence[str],
    output: str,
    spans_key: str,
    existing_ents: str,
    token_probs: bool,
    loss_on: str,
    max_grad_norm: float,
    buffer_words: int,
    trim_heap: bool,
    store_trf_data: bool,
    prefetch: str,
    calibrated: bool = True,
    threshold: float = 0.0,
    thresholds: Optional[dict[str, float]] = None,
) -> dict[str, Any]:
    """The component's `cfg`: the settings checked and normalised. A value
    out of range raises E010 naming `[components.<name>] <setting>`."""
    for setting, value, options in (
        ("aggregation", aggregation, AGGREGATIONS),
        ("scheme", scheme, SCHEMES),
        ("decoding", decoding, DECODINGS),
        ("output", output, OUTPUTS),
        ("existing_ents", existing_ents, EXISTING),
        ("loss_on", loss_on, LOSS_ON),
        ("prefetch", prefetch, PREFETCH),
    ):
        if value not in options:
            raise ValueError(
                Errors.E010.format(value=value, setting=f"[components.{name}] {setting}", options=", ".join(options))
            )
    if not max_grad_norm >= 0:
        raise ValueError(
            Errors.E010.format(
                value=max_grad_norm,
                setting=f"[components.{name}] max_grad_norm",
                options="a number >= 0 (0: no clipping)",
            )
        )
    if not isinstance(buffer_words, int) or buffer_words < 0:
        raise ValueError(
            Errors.E010.format(
                value=buffer_words,
                setting=f"[components.{name}] buffer_words",
                options="an integer >= 0 (0: nlp.pipe's batch_size)",
            )
        )
    limits: list[tuple[str, object]] = [("threshold", threshold)]
    limits += [(f"thresholds.{k}", v) for k, v in (thresholds or {}).items()]
    for setting, limit in limits:
        if isinstance(limit, bool) or not isinstance(limit, (int, float)) or not 0.0 <= limit <= 1.0:
            raise ValueError(
                Errors.E010.format(
                    value=limit,
                    setting=f"[components.{name}] {setting}",
                    options="a number from 0 to 1 (entities scoring below it are left out; 0 keeps all)",
                )
            )
    return {
        "aggregation": aggregation,
        "scheme": scheme,
        "decoding": decoding,
        "label_map": dict(label_map or {}),
        "ignore_labels": list(ignore_labels),
        "output": output,
        "spans_key": spans_key,
        "existing_ents": existing_ents,
        "token_probs": bool(token_probs),
        "loss_on": loss_on,
        "max_grad_norm": float(max_grad_norm),
        "buffer_words": buffer_words,
        "trim_heap": bool(trim_heap),
        "store_trf_data": bool(store_trf_data),
        "prefetch": prefetch,
        "calibrated": bool(calibrated),
        "threshold": float(threshold),
        "thresholds": {str(k): float(v) for k, v in (thresholds or {}).items()},
    }


def built_from_config() -> bool:
    """Whether the factory runs inside `Language.from_config`: spacy.load,
    an installed package, `spacy train`, or a user's `from_config` before
    `from_bytes`. Such a pipeline may load its own saved checkpoint next
    (from_disk / from_bytes), so the `name` in its config may point to a
    folder that only existed where it was trained: the checkpoint is looked
    for at `initialize()` or first use. A direct `nlp.add_pipe` is checked
    at once. spaCy tells a factory neither case, so this looks for
    from_config's code object on the call stack."""
    code = Language.__dict__["from_config"].__func__.__code__
    frame: Optional[FrameType] = sys._getframe(1)
    while frame is not None:
        if frame.f_code is code:
            return True
        frame = frame.f_back
    return False


def check_threshold_labels(cfg: dict[str, Any], labels: Sequence[str], name: str) -> None:
    """`thresholds` may name only labels the component writes (E046)."""
    unknown = sorted(set(cfg["thresholds"]) - set(labels))
    if unknown:
        raise ValueError(Errors.E046.format(name=name, unknown=", ".join(unknown), labels=", ".join(labels)))
