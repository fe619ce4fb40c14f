"""The raw text of an xAPI file: which form it has, where each statement's text is, what is wrong with it.

A file is JSON lines (one statement a line), one statement, a JSON array or an LRS page
``{"statements": [...]}``; these functions work on its bytes before any statement is checked:
the first lines that tell the form, byte ranges of whole lines for reading a large JSON-lines
file in blocks, UTF-8 problems, and keys repeated within one object, which orjson would drop
silently. (An array or page is read a statement at a time by :mod:`.document`.)
"""

from __future__ import annotations

import json
import os
from typing import Any, BinaryIO

import orjson

from training_roi.ingest.xapi.statement import SPINE

__all__ = [
    "BLOCK_BYTES",
    "BOM",
    "WATCHED_KEYS",
    "first_lines",
    "line_blocks",
    "looks_like_statement",
    "may_repeat_keys",
    "repeated_key",
    "utf8_problem",
]

BLOCK_BYTES = 16 << 20
"""A large JSON-lines file is read in blocks of about this many bytes, each ending after a newline."""
BOM = b"\xef\xbb\xbf"


def first_lines(fh: BinaryIO) -> tuple[bytes, bool]:
    """Return the first non-blank line (BOM removed) and whether another non-blank one follows."""
    first = b""
    for number, line in enumerate(fh):
        if number == 0:
            line = line.removeprefix(BOM)
        if not line.strip():
            continue
        if first:
            return first, True
        first = line
    return first, False


def line_blocks(fh: BinaryIO) -> list[tuple[int, int]]:
    """Cut an open file into byte ranges of about ``BLOCK_BYTES`` that end after a newline."""
    size = fh.seek(0, os.SEEK_END)
    spans: list[tuple[int, int]] = []
    start = 0
    while start < size:
        end = start + BLOCK_BYTES
        if end >= size:
            end = size
        else:
            fh.seek(end - 1)
            fh.readline()
            end = fh.tell()
        spans.append((start, end))
        start = end
    return spans


class _Repeats(dict[str, Any]):
    """A JSON object in which some key appeared more than once (seen by the slow re-parse)."""

    repeated: list[str]


def _pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """Build an object from its key/value pairs, marking it when a key is repeated."""
    d = dict(pairs)
    if len(d) == len(pairs):
        return d
    seen: set[str] = set()
    repeated: list[str] = []
    for key, _ in pairs:
        if key in seen:
            repeated.append(key)
        seen.add(key)
    marked = _Repeats(d)
    marked.repeated = repeated
    return marked


def repeated_key(raw: bytes | str) -> str | None:
    """Return the path of the first key repeated within one object of ``raw``, or None.

    orjson keeps the last of repeated keys silently; the standard library's parser shows them,
    at several times the cost, so this runs only when the raw text looks suspicious.
    """
    try:
        value = json.loads(raw, object_pairs_hook=_pairs)
    except ValueError:
        return None
    todo: list[tuple[object, str]] = [(value, "")]
    while todo:
        node, path = todo.pop()
        if isinstance(node, dict):
            if isinstance(node, _Repeats):
                key = node.repeated[0]
                return f"{path}.{key}" if path else key
            todo.extend((v, f"{path}.{k}" if path else k) for k, v in reversed(node.items()))
        elif isinstance(node, list):
            todo.extend((v, f"{path}[{i}]") for i, v in reversed(list(enumerate(node))))
    return None


RESULT_KEYS = ("score", "success", "completion")
"""Keys a statement's result holds once."""
WATCHED_KEYS = ("actor", "verb", "object", "timestamp", "result", *RESULT_KEYS)
"""Keys a statement holds once (at its top level, or in its result), whose repetition changes a figure."""
_WATCHED_TEXT = tuple(f'"{k}"' for k in WATCHED_KEYS)
_WATCHED = tuple(k.encode() for k in _WATCHED_TEXT)


def may_repeat_keys(raw: bytes | str) -> bool:
    """Tell whether the raw text names one of :data:`WATCHED_KEYS` more than once.

    A key repeated in one object is invisible once orjson has parsed it (it keeps the last): a
    repeated ``actor`` (the conformance suite's ``multiple_actor``) would silently load the wrong
    learner, a repeated ``timestamp`` or ``success`` another day or outcome. Counting a few words
    in the raw bytes is cheap; a statement that trips it (a SubStatement does, legitimately) is
    re-parsed by :func:`repeated_key`.
    """
    if isinstance(raw, str):
        return any(raw.count(k) > 1 for k in _WATCHED_TEXT)
    return any(raw.count(k) > 1 for k in _WATCHED)


def utf8_problem(data: bytes, offset: int = 0) -> str | None:
    """Say why ``data`` (found at ``offset`` in its file) is not UTF-8 text, or return None."""
    if data.isascii():
        return None
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as exc:
        return f"byte 0x{data[exc.start]:02x} at offset {offset + exc.start} is not UTF-8"
    return None


def looks_like_statement(line: bytes) -> bool:
    """Tell whether one line is a JSON object with an id, actor, verb or object."""
    try:
        value = orjson.loads(line)
    except orjson.JSONDecodeError:
        return False
    return type(value) is dict and any(k in value for k in (*SPINE, "id"))
