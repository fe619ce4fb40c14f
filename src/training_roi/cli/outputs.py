"""Output folders and files, checked before any work is done.

A command that computes for minutes and then cannot write its answer has wasted the minutes: each
command that writes checks its ``--out`` (or output file) first and says, in one sentence, what
is wrong with it.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from training_roi.errors import TrainingRoiError

__all__ = ["writable", "writable_file"]


def writable(folder: Path, option: str) -> None:
    """Refuse an output folder that is a file, or that cannot be created or written, before any work is done."""
    here = folder
    while not here.exists() and here != here.parent:
        here = here.parent
    if not here.is_dir():
        what = "is a file, not a folder" if here == folder else f"cannot be created: {here} is a file"
        raise TrainingRoiError(f"{option} {folder}: {what}")
    try:
        with tempfile.TemporaryFile(dir=here):
            pass
    except OSError as exc:
        verb = "cannot be written" if here == folder else f"cannot be created in {here}"
        raise TrainingRoiError(f"{option} {folder}: {verb} ({exc.strerror or exc})") from None


def writable_file(path: Path, option: str) -> None:
    """Refuse an output file that is a folder, or whose folder cannot be created or written, before any work."""
    if path.is_dir():
        raise TrainingRoiError(f"{option} {path}: is a folder, not a file")
    writable(path.parent, option)
