"""The product's own fingerprint: what was computed by one product is not served to another.

Kept answers, kept measurements and the record of what each source's files held when they were
loaded all say which product made them; a changed product (another version, an edited file of
the package, a library installed or removed) makes them again.
"""

from __future__ import annotations

import hashlib
import json
import os
import site
import sys
from importlib.metadata import PackageNotFoundError, version

__all__ = ["product_fingerprint"]


def product_fingerprint() -> str:
    """A digest of the product: a changed product never serves what an older one computed.

    It covers the version, every file of the installed package (relative path, size and modification
    time in ns; compiled bytecode left out), the Python version and the modification time of the
    site-packages folders, which installing or removing a library changes. It takes a few milliseconds.
    """
    root = os.path.dirname(os.path.abspath(__file__))  # the package's folder
    files: list[tuple[str, int, int]] = []
    for folder, subfolders, names in os.walk(root):
        subfolders[:] = sorted(d for d in subfolders if d != "__pycache__")
        for name in sorted(names):
            if name.endswith((".pyc", ".pyo")):
                continue
            path = os.path.join(folder, name)
            st = os.stat(path)
            files.append((path[len(root):], st.st_size, st.st_mtime_ns))
    libraries = []
    for folder in (*site.getsitepackages(), site.getusersitepackages()):
        try:
            libraries.append((folder, os.stat(folder).st_mtime_ns))
        except OSError:
            continue
    text = json.dumps([_version(), sys.version, files, libraries])
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _version() -> str:
    """The installed distribution's version (as ``training_roi.__version__``)."""
    try:
        return version("training-roi")
    except PackageNotFoundError:
        return "0.0.0"
