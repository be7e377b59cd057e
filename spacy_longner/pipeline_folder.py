"""A long_ner component's folder in a saved pipeline: `cfg` (its settings
and the model's labels, window and stride) and `model/` (the checkpoint as
save_pretrained writes it, weights as safetensors only), with
`runtime = "onnx"` the ONNX graph exported from those weights (`model.onnx`,
its checksums in `cfg`), and the same folder packed as bytes."""

from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Optional

from thinc.api import Model

from .calibration import Calibration
from .checkpoint import HFState, load_checkpoint, save_checkpoint
from .errors import Errors, reason

UNSAFE_WEIGHT_SUFFIXES = (".bin", ".pt", ".pth", ".pkl", ".pickle", ".ckpt")


def save_component(state: HFState, cfg: dict[str, Any], path: Path, runtime: str = "torch") -> None:
    """Write a component's folder: `cfg` and the checkpoint under `model/`;
    for runtime "onnx" also the graph of these weights (exported where it is
    not yet)."""
    import srsly

    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    saved = {**cfg, "model_labels": state.labels, "window": state.window, "stride": state.stride}
    if runtime == "onnx":
        from .onnx_backend import save_graph

        saved["onnx"] = save_graph(state, path)
    srsly.write_json(path / "cfg", saved)
    save_checkpoint(state, path / "model")


def load_component(model: Model, path: Path, component: str) -> HFState:
    """Load the checkpoint of a component's folder written by
    `save_component` into `model`, and check it against the `cfg` beside it:
    a mismatch of labels means a damaged or hand-edited folder, and is a
    coded error that says so, as is an ONNX graph that is not the one the
    `cfg` names or was exported from other weights (read where the model
    runs on ONNX Runtime). Window and stride may differ: they are settings,
    which a user may change when loading."""
    import srsly

    path = Path(path)
    folder = path / "model"
    if not (folder / "config.json").exists():
        raise ValueError(Errors.E013.format(path=folder))
    try:
        saved = srsly.read_json(path / "cfg")
    except (OSError, ValueError) as e:
        raise ValueError(Errors.E019.format(path=path / "cfg", problem=f"it cannot be read ({reason(e)})")) from e
    if not isinstance(saved, dict):
        raise ValueError(Errors.E019.format(path=path / "cfg", problem="it is not a JSON object"))
    check_pipeline_weights(folder)
    state = load_checkpoint(model, str(folder), component=component, local=True, safetensors_only=True)
    if "model_labels" in saved and saved["model_labels"] != state.labels:
        raise ValueError(
            Errors.E019.format(
                path=path / "cfg",
                problem=f"its model_labels {saved['model_labels']!r} differ from the saved model's {state.labels!r}",
            )
        )
    if model.attrs["runtime"] == "onnx":
        from .onnx_backend import adopt_saved_graph

        adopt_saved_graph(state, path, saved.get("onnx"))
    return state


def check_pipeline_weights(folder: Path) -> None:
    """A pipeline folder is something people download and share: its weights
    are read as safetensors only (no pickle, which can run code on load), and
    a damaged file is named in a coded error."""
    from safetensors import SafetensorError, safe_open

    pickled = sorted(p.name for p in folder.iterdir() if p.suffix in UNSAFE_WEIGHT_SUFFIXES)
    if pickled:
        raise ValueError(Errors.E020.format(path=folder, files=", ".join(pickled)))
    files = sorted(folder.glob("*.safetensors"))
    if not files:
        raise ValueError(Errors.E021.format(path=folder / "model.safetensors", problem="it is missing"))
    for file in files:
        try:
            with safe_open(str(file), framework="pt") as f:
                f.keys()
        except (SafetensorError, OSError) as e:
            raise ValueError(Errors.E021.format(path=file, problem=reason(e))) from e


def folder_to_bytes(write: Callable[[Path], None]) -> bytes:
    """A component folder as bytes: `write(folder)` fills a temporary folder,
    whose files are packed with msgpack (the component's to_bytes)."""
    import tempfile

    import srsly

    with tempfile.TemporaryDirectory() as tmp:
        write(Path(tmp))
        files = {str(p.relative_to(tmp)): p.read_bytes() for p in Path(tmp).rglob("*") if p.is_file()}
    return srsly.msgpack_dumps(files)


def folder_from_bytes(data: bytes, read: Callable[[Path], Any]) -> None:
    """Unpack what `folder_to_bytes` made into a temporary folder and
    `read(folder)` it (the component's from_bytes)."""
    import shutil
    import tempfile

    import srsly

    files = srsly.msgpack_loads(data)
    tmp = Path(tempfile.mkdtemp())
    try:
        for rel, content in files.items():
            target = tmp / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(content)
        read(tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def load_pipeline(name: str, config: Optional[dict] = None):
    """spacy.load(name, config=...), a pipeline that is neither a folder nor
    an installed package being a coded error (E040)."""
    import spacy
    from spacy.util import is_package

    if not Path(name).exists() and not is_package(name):
        raise ValueError(Errors.E040.format(name=name))
    return spacy.load(name, config=config or {})


class FolderMixin:
    """The component's serialization: its folder in a saved pipeline (`cfg`,
    `model/`, the confidence map where fitted), and the same folder packed as
    bytes. The class that mixes it in has `state`, `cfg`, `model`, `name`,
    `calibration` and `_loaded()`."""

    if TYPE_CHECKING:
        cfg: dict[str, Any]
        model: Model
        name: str
        calibration: Optional[Calibration]

        @property
        def state(self) -> HFState: ...

        def _loaded(self) -> None: ...

    def to_disk(self, path, *, exclude=tuple()) -> None:
        save_component(self.state, self.cfg, Path(path), runtime=self.model.attrs["runtime"])
        if self.calibration is not None:
            self.calibration.to_disk(Path(path))

    def from_disk(self, path, *, exclude=tuple()):
        load_component(self.model, Path(path), self.name)
        self.calibration = Calibration.from_disk(Path(path))
        self._loaded()
        return self

    def to_bytes(self, *, exclude=tuple()) -> bytes:
        return folder_to_bytes(self.to_disk)

    def from_bytes(self, bytes_data: bytes, *, exclude=tuple()):
        folder_from_bytes(bytes_data, self.from_disk)
        return self
