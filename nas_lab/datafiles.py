"""Shipped data files: where they live, and their sha256 manifests, written and checked here.

Every file the lessons read (the benchmark table, the proxy table, the OFA supernet, the
comparison and one-shot results) lies in one data directory, with a ``NAME.manifest.json`` beside
each table that records its sha256 and how it was made. The directory is, in this order:

1. ``$NAS_LAB_DATA``, when set (an instructor's own tables, or a read-only install);
2. ``nas_lab/_data`` inside an installed package (``pip install .`` ships ``data/`` there);
3. ``data/`` of a source checkout (``pip install -e .``, or running from the repository).
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

ENV = "NAS_LAB_DATA"
_PACKAGE = Path(__file__).resolve().parent


def data_dir() -> Path:
    """The data directory (see the module docstring); a clear error when there is none."""
    if os.environ.get(ENV):
        folder = Path(os.environ[ENV]).expanduser()
        if not folder.is_dir():
            raise FileNotFoundError(f"${ENV} is set to {folder}, which is not a directory")
        return folder
    for folder in (_PACKAGE / "_data", _PACKAGE.parent / "data"):
        if folder.is_dir():
            return folder
    raise FileNotFoundError(
        "nas_lab cannot find its data directory: install the package with `pip install .` from "
        f"the repository (it ships data/), or set {ENV} to a folder holding the tables"
    )


def data_file(name: str) -> Path:
    """``data_dir() / name``; the file need not exist yet (a builder's default output)."""
    return data_dir() / name


def sha256(path: str | Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def manifest_path(path: str | Path) -> Path:
    """``table.npz`` -> ``table.manifest.json``, beside it."""
    return Path(path).with_suffix(".manifest.json")


def write_manifest(path: str | Path, **fields) -> dict:
    """Write ``path``'s manifest: its name, sha256 and size, then ``fields``. Returns it."""
    path = Path(path)
    manifest = {"file": path.name, "sha256": sha256(path), "bytes": path.stat().st_size, **fields}
    manifest_path(path).write_text(json.dumps(manifest, indent=1) + "\n")
    return manifest


def read_manifest(path: str | Path, fix: str, verify: bool = True) -> dict:
    """The manifest of ``path``, after checking that both exist and, with ``verify``, that the
    file's sha256 matches. ``fix`` says how to restore or rebuild the file (it ends each error)."""
    path, mpath = Path(path), manifest_path(path)
    if not path.exists():
        raise FileNotFoundError(f"no file at {path}; {fix}")
    if not mpath.exists():
        raise FileNotFoundError(f"the manifest {mpath} is missing; {fix}")
    manifest = json.loads(mpath.read_text())
    if verify and sha256(path) != manifest.get("sha256"):
        raise ValueError(
            f"{path} does not match its manifest (sha256 differs): the file was altered or "
            f"truncated; {fix}"
        )
    return manifest
