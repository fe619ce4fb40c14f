"""Helpers that write small input files for tests."""

from __future__ import annotations

import os
from pathlib import Path


def shared_dir() -> Path:
    """The project's shared folder (real third-party data), beside the repository by default."""
    return Path(os.environ.get("TRAINING_ROI_SHARED", Path(__file__).resolve().parents[2] / "shared"))


def write(path: Path, text: str, *, bom: bool = False, encoding: str = "utf-8") -> Path:
    """Write a test file, creating its folder."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes((b"\xef\xbb\xbf" if bom else b"") + text.encode(encoding))
    return path
