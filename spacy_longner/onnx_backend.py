"""The forward pass through ONNX Runtime (`runtime = "onnx"`), beside the
torch one in runtime.py: the same planned buffers in, the same
(n_wp_total, n_labels) logits out, so windows, batching, alignment,
decoding and writing are shared and only the forward pass differs.

The graph is exported from the checkpoint's fp32 weights by torch's
TorchScript exporter with dynamic batch and length axes, then run at two
shapes other than the traced one against the torch model: a family whose
graph does not give the torch model's logits there is refused with a coded
error (E031), never run. Longformer and Funnel are refused without trying:
their exported graphs fail or give other logits at untraced shapes.

What is derived from the weights lives in `HFState.derived` (dropped by
`weights_changed()` after a training step): the fp32 graph's bytes, its int8
copy, and the sessions, one per process (ONNX Runtime's thread pool does not
survive fork) and thread count. One session serves concurrent calls: its
`run` is thread-safe.
"""

import contextlib
import hashlib
import logging
import os
import tempfile
import threading
import warnings
from pathlib import Path
from typing import Optional

import numpy as np
from thinc.api import Model

from .batching import PlannedBuffer
from .checkpoint import HFState
from .errors import Errors, reason
from .runtime import quantized_linears

GRAPH_FILE = "model.onnx"
OPSET = 17
INPUTS = ("input_ids", "attention_mask")
OUTPUTS = ("logits", "hidden")
# Families whose exported graph is known to be wrong at shapes other than
# the traced one (tests/test_onnx.py keeps checking it).
REFUSED_FAMILIES = {
    "longformer": "its banded attention is traced for one padded width: other widths fail in ONNX Runtime "
    "or give other logits",
    "funnel": "its pooling is traced for one length: other lengths fail in ONNX Runtime",
}
# The traced shape, and the shapes the exported graph is checked at.
TRACE_SHAPE = (2, 16)
CHECK_SHAPES = ((1, 7), (3, 29))
# Largest logit difference allowed between the graph and the torch model,
# relative to the largest logit (float reordering gives about 1e-6).
TOLERANCE = 1e-3

_build_lock = threading.RLock()


def require_onnxruntime(component: str = "long_ner", need: str = "onnxruntime"):
    """Import onnxruntime (or `need`: onnx, which export and int8 use), or
    stop with E029 naming the install line."""
    import importlib

    try:
        return importlib.import_module(need)
    except ImportError as e:
        raise ImportError(Errors.E029.format(component=component, module=need, reason=reason(e))) from e


def check_family(state: HFState, component: str = "long_ner") -> None:
    """E030 for a family known not to export."""
    family = getattr(state.hf_model.config, "model_type", "")
    if family in REFUSED_FAMILIES:
        raise ValueError(Errors.E030.format(family=family, why=REFUSED_FAMILIES[family], component=component))


def weights_sha256(hf_model) -> str:
    """A checksum of the model's parameters (names, dtypes, shapes and
    values), whatever file layout they were saved in."""
    import torch

    digest = hashlib.sha256()
    for name, param in sorted(hf_model.named_parameters(), key=lambda item: item[0]):
        tensor = param.detach().cpu().contiguous()
        digest.update(f"{name}|{tensor.dtype}|{tuple(tensor.shape)}|".encode())
        digest.update(tensor.view(-1).view(dtype=torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def graph_record(state: HFState) -> dict[str, str]:
    """The `onnx` entry of a saved component's cfg: the graph file and the
    checksums that tie it to the weights beside it."""
    graph = fp32_graph(state)
    return {
        "file": GRAPH_FILE,
        "graph_sha256": hashlib.sha256(graph).hexdigest(),
        "weights_sha256": _derive(state, "weights_sha256", lambda: weights_sha256(state.hf_model)),
        "opset": OPSET,
    }


def save_graph(state: HFState, folder: Path) -> dict[str, str]:
    """Write the fp32 graph into a component folder; its cfg record."""
    record = graph_record(state)
    (Path(folder) / GRAPH_FILE).write_bytes(fp32_graph(state))
    return record


def adopt_saved_graph(state: HFState, folder: Path, record: Optional[dict]) -> None:
    """Take a component folder's saved graph as this state's fp32 graph,
    after checking that it is the graph its cfg names and that it was
    exported from the weights just loaded (E032 otherwise). A folder without
    a graph exports one on first use."""
    path = Path(folder) / GRAPH_FILE
    if not path.exists():
        return
    graph = path.read_bytes()
    if not isinstance(record, dict) or "graph_sha256" not in record or "weights_sha256" not in record:
        raise ValueError(Errors.E032.format(path=path, problem="the component's cfg has no checksums for it"))
    if hashlib.sha256(graph).hexdigest() != record["graph_sha256"]:
        raise ValueError(
            Errors.E032.format(path=path, problem="the file is not the graph the cfg names (checksum differs)")
        )
    weights = weights_sha256(state.hf_model)
    if weights != record["weights_sha256"]:
        raise ValueError(
            Errors.E032.format(path=path, problem="it was exported from other weights than the ones beside it")
        )
    state.derived["weights_sha256"] = weights
    state.derived["onnx_graph"] = graph


def fp32_graph(state: HFState) -> bytes:
    """The fp32 graph of the state's weights (exported on first use)."""
    return _derive(state, "onnx_graph", lambda: export_graph(state))


def int8_graph(state: HFState, how: str) -> bytes:
    """The fp32 graph with ONNX Runtime's dynamic int8 quantization of its
    weight MatMuls: all of them ("int8_all"), or the same as the torch int8
    path ("int8": all but the feed-forward output projections and the
    head)."""
    return _derive(state, f"onnx_graph_{how}", lambda: quantize_graph(fp32_graph(state), kept_fp32_shapes(state, how)))


def session(state: HFState, quantize: str):
    """An InferenceSession for this process and the current torch thread
    count (`fork_safe_threads` makes it 1 in workers and forked children)."""
    import torch

    threads = torch.get_num_threads()
    key = f"onnx_session_{quantize}_{os.getpid()}_{threads}"

    def build():
        ort = require_onnxruntime()
        graph = fp32_graph(state) if quantize == "none" else int8_graph(state, quantize)
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        return ort.InferenceSession(graph, options, providers=["CPUExecutionProvider"])

    return _derive(state, key, build)


def _derive(state: HFState, key: str, build):
    if key in state.derived:
        return state.derived[key]
    # One build at a time: concurrent nlp.pipe calls share what is built.
    with _build_lock:
        return state.derive(key, build)


def run_buffer(model: Model, state: HFState, planned: PlannedBuffer) -> "tuple[np.ndarray, Optional[np.ndarray]]":
    """runtime.run_buffer through ONNX Runtime on the CPU."""
    sess = session(state, model.attrs["quantize"])
    want_hidden = bool(model.attrs.get("hidden_states"))
    names = list(OUTPUTS) if want_hidden else [OUTPUTS[0]]
    parts: list[list[np.ndarray]] = [[] for _ in names]
    for batch in planned.batches:
        outputs = sess.run(names, {"input_ids": batch.input_ids, "attention_mask": batch.attention_mask})
        for part, out in zip(parts, outputs):
            part.append(out.reshape(-1, out.shape[-1]))
    gathered = [np.concatenate(part)[planned.rows] for part in parts]
    return gathered[0], (gathered[1] if want_hidden else None)


# ---------------------------------------------------------------- export


def export_graph(state: HFState) -> bytes:
    """Export the fp32 model with dynamic batch and length axes and check
    it at other shapes (E031 where it differs). The model itself is not
    touched: a CPU copy is traced."""
    import copy

    check_family(state)
    return export_checked(copy.deepcopy(state.hf_model).cpu().float().eval())


def export_checked(hf) -> bytes:
    """Export a CPU fp32 model (it is traced, so pass a copy) and check the
    graph at other shapes; E031 where the export fails or differs."""
    import torch

    require_onnxruntime(need="onnx")
    eager_attention(hf)
    wrapper = _graph_module(hf)
    dynamic = {name: {0: "batch", 1: "length"} for name in INPUTS + OUTPUTS}
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / GRAPH_FILE
        try:
            with warnings.catch_warnings(), torch.inference_mode(False), torch.no_grad():
                # The TorchScript exporter's deprecation and tracer warnings.
                warnings.simplefilter("ignore")
                torch.onnx.export(
                    wrapper,
                    _example(hf, *TRACE_SHAPE),
                    str(path),
                    input_names=list(INPUTS),
                    output_names=list(OUTPUTS),
                    dynamic_axes=dynamic,
                    opset_version=OPSET,
                    dynamo=False,
                    do_constant_folding=True,
                )
        except Exception as e:  # any exporter failure is the family's
            raise ValueError(
                Errors.E031.format(
                    family=hf.config.model_type, problem=f"the export failed ({type(e).__name__}: {reason(e)[:300]})"
                )
            ) from e
        graph = path.read_bytes()
    check_graph(graph, hf)
    return graph


def eager_attention(hf) -> None:
    """Trace attention as plain MatMul/Softmax where the model allows it:
    ONNX Runtime fuses and runs that graph faster than the one traced from
    torch's scaled_dot_product_attention (MiniLM-L6 on CPU; the same logits
    within 1e-6)."""
    setter = getattr(hf, "set_attn_implementation", None)
    if setter is None:
        return
    # A family with one attention implementation only refuses the call.
    with contextlib.suppress(ValueError, ImportError, NotImplementedError):
        setter("eager")


def _graph_module(hf):
    """The model as a module of (input_ids, attention_mask) -> (logits,
    last hidden state): what is exported."""
    import torch

    class Outputs(torch.nn.Module):
        def __init__(self, hf):
            super().__init__()
            self.hf = hf

        def forward(self, input_ids, attention_mask):
            out = self.hf(input_ids=input_ids, attention_mask=attention_mask, output_hidden_states=True)
            return out.logits, out.hidden_states[-1]

    # The exporter puts the module in its training mode afterwards: eval.
    return Outputs(hf).eval()


def _example(hf, batch: int, length: int, seed: int = 0) -> tuple:
    """Random ids and a mask with padded rows, at a shape."""
    import torch

    rng = np.random.default_rng(seed + batch * 1000 + length)
    vocab = int(getattr(hf.config, "vocab_size", 100) or 100)
    ids = torch.from_numpy(rng.integers(0, vocab, size=(batch, length), dtype=np.int64))
    mask = torch.ones((batch, length), dtype=torch.int64)
    for row in range(1, batch):  # rows 1..b-1 padded, to different lengths
        mask[row, length - row * length // (batch + 1) :] = 0
    return ids, mask


def check_graph(graph: bytes, hf) -> None:
    """Run the graph at CHECK_SHAPES and compare with the torch model on the
    unpadded positions; E031 where the logits differ by more than
    TOLERANCE (relative) or the graph fails."""
    import torch

    ort = require_onnxruntime()
    sess = ort.InferenceSession(graph, providers=["CPUExecutionProvider"])
    family = hf.config.model_type
    for shape in CHECK_SHAPES:
        ids, mask = _example(hf, *shape)
        with torch.inference_mode():
            want = hf(input_ids=ids, attention_mask=mask).logits.float().numpy()
        try:
            got = sess.run([OUTPUTS[0]], {"input_ids": ids.numpy(), "attention_mask": mask.numpy()})[0]
        except Exception as e:  # onnxruntime raises its own exception types
            raise ValueError(
                Errors.E031.format(
                    family=family,
                    problem=f"the graph fails at batch x length {shape[0]} x {shape[1]} ({reason(e)[:300]})",
                )
            ) from e
        valid = mask.numpy().astype(bool)
        diff = float(np.abs(got - want)[valid].max())
        if diff > TOLERANCE * max(1.0, float(np.abs(want[valid]).max())):
            raise ValueError(
                Errors.E031.format(
                    family=family,
                    problem=f"at batch x length {shape[0]} x {shape[1]} its logits differ from the torch model's "
                    f"by up to {diff:.3g}",
                )
            )


# ---------------------------------------------------------------- int8


def kept_fp32_shapes(state: HFState, how: str) -> set[tuple[int, int]]:
    """(in, out) of the linear layers that the torch int8 path keeps fp32
    (runtime.quantized_linears): none for "int8_all"; for "int8", the
    feed-forward output projections and the head."""
    import torch

    quantized = quantized_linears(state.hf_model, how)
    return {
        (m.in_features, m.out_features)
        for name, m in state.hf_model.named_modules()
        if isinstance(m, torch.nn.Linear) and name not in quantized
    }


def quantize_graph(graph: bytes, keep_fp32: set[tuple[int, int]]) -> bytes:
    """ONNX Runtime's dynamic int8 quantization (int8 weights, activations
    quantized per call) of the graph's MatMuls with a constant weight,
    except those whose weight is (in, out) in `keep_fp32`."""
    onnx = require_onnxruntime(need="onnx")
    from onnxruntime.quantization import QuantType, quantize_dynamic

    model = onnx.load_from_string(graph)
    weights = {init.name: tuple(init.dims) for init in model.graph.initializer}
    matmuls = [node for node in model.graph.node if node.op_type == "MatMul" and node.input[1] in weights]
    exclude = [node.name for node in matmuls if weights[node.input[1]] in keep_fp32]
    with tempfile.TemporaryDirectory() as tmp:
        src, dst = Path(tmp) / "fp32.onnx", Path(tmp) / "int8.onnx"
        src.write_bytes(graph)
        # The quantizer logs advice through logging.warning(), which would
        # also give the root logger a stderr handler for good: a handler of
        # our own while it runs keeps both away from the user's logging.
        root = logging.getLogger()
        level, quiet = root.level, logging.NullHandler()
        root.addHandler(quiet)
        root.setLevel(logging.ERROR)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                quantize_dynamic(
                    str(src),
                    str(dst),
                    op_types_to_quantize=["MatMul"],
                    nodes_to_exclude=exclude,
                    weight_type=QuantType.QInt8,
                    per_channel=False,
                )
        finally:
            root.setLevel(level)
            root.removeHandler(quiet)
        return dst.read_bytes()
