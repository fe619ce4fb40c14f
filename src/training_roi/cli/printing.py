"""Printing a command's answer: JSON as UTF-8 whatever the console's encoding, and panels kept as printed text.

The answer cache keeps the text a panel printed to a console of a given look (width, colours,
encoding) and writes it again as is, instead of laying the panel out again.
"""

from __future__ import annotations

import sys
from typing import Any

from rich.console import Console

__all__ = ["printed", "stdout_utf8", "write_printed"]


def stdout_utf8(text: str) -> None:
    """Write a JSON document to standard output as UTF-8 (as JSON is exchanged), whatever the console's encoding."""
    raw = getattr(sys.stdout, "buffer", None)
    if raw is None:
        sys.stdout.write(text)
        return
    sys.stdout.flush()
    raw.write(text.encode("utf-8"))
    raw.flush()


def printed(console: Console, renderable: Any, look: str | None) -> str:
    """Print ``renderable``; return the text printed (kept to be written again as is to a console of ``look``)."""
    if look is None:
        console.print(renderable)
        return ""
    with console.capture() as captured:
        console.print(renderable)
    text = captured.get()
    write_printed(console, text)
    return text


def write_printed(console: Console, text: str) -> None:
    """Write text a console of the same look rendered, as its print would have."""
    console.file.write(text)
    console.file.flush()
