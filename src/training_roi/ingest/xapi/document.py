"""A JSON document of statements — an array, an LRS page, one statement — read a piece at a time.

An export of a million statements as one JSON array is hundreds of megabytes, and parsed whole
it takes about ten times its size in memory. :class:`Document` reads the file in chunks of
decoded text and gives the exact text of each element of the array (or of an LRS page's
``statements`` list) as soon as it is complete, so memory holds one chunk and one statement
whatever the file's size. The JSON between the elements is checked here (with the standard
library's decoder, which says where a value ends); each element's own text is parsed by the
caller, as a JSON line is.
"""

from __future__ import annotations

import codecs
import json
from collections.abc import Iterator
from typing import Any, BinaryIO

from training_roi.ingest.xapi.framing import utf8_problem
from training_roi.ingest.xapi.statement import SPINE

__all__ = ["CHUNK_BYTES", "STATEMENT_LIMIT", "Document", "limit_text", "utf8_problem_in"]

CHUNK_BYTES = 8 << 20
"""The file is read and decoded this many bytes at a time."""
STATEMENT_LIMIT = 16 << 20
"""A statement (or a value between statements) longer than this many characters is not read."""

_WS = " \t\n\r"
_MARGIN = 64
"""A value must end this many characters before the end of the text read so far to be taken."""
_DECODER = json.JSONDecoder()


class _Fault(Exception):
    """The document stops being valid JSON here; the message says how."""


class Document:
    """One open JSON document, read in chunks: iterate :meth:`elements`, then read the attributes.

    After the iteration, :attr:`form` is ``"array"``, ``"page"`` (an object with a
    ``statements`` list), ``"statement"`` (an object with a statement's ``actor``, ``verb`` or
    ``object``, or with no ``statements`` list: the caller reads it whole) or ``""`` (the file
    starts with neither ``[`` nor ``{``); :attr:`more` is a page's ``more`` value; :attr:`fault`
    says why reading stopped early (None when the whole document was read), and
    :attr:`fault_text` holds the text from that point on (at most ``raw_limit`` characters).
    """

    def __init__(self, fh: BinaryIO, *, raw_limit: int) -> None:
        self._fh = fh
        self._decoder = codecs.getincrementaldecoder("utf-8")()
        self._text = ""
        self._i = 0
        self._eof = False
        self._raw_limit = raw_limit
        self.count = 0
        """Elements given so far."""
        self.form = ""
        self.more: Any = None
        self.fault: str | None = None
        self.fault_text = ""

    def elements(self) -> Iterator[str]:
        """Yield the text of each element of the array or page, in order, until the end or a fault."""
        try:
            first = self._next_char()
            if first == "\ufeff":
                self._i += 1
                first = self._next_char()
            if first == "[":
                self.form = "array"
                self._i += 1
                yield from self._array()
            elif first == "{":
                self._i += 1
                yield from self._object()
            else:
                raise _Fault("the file starts with neither '[' nor '{'")
            if self.form != "statement" and self._next_char():
                raise _Fault("more text follows the end of the document")
        except _Fault as fault:
            self.fault = f"malformed JSON: {fault}"
            self.fault_text = self._rest()

    def _array(self) -> Iterator[str]:
        """The elements of a list whose ``[`` has just been read, up to and including its ``]``."""
        char = self._next_char()
        if char == "]":
            self._i += 1
            return
        while True:
            self._next_char()
            yield self._value()[1]
            self.count += 1
            char = self._next_char()
            if char == ",":
                self._i += 1
                continue
            if char == "]":
                self._i += 1
                return
            where = "the file ends" if not char else "expected ',' or ']'"
            raise _Fault(f"{where} after statement {self.count}")

    def _object(self) -> Iterator[str]:
        """The members of an object whose ``{`` has just been read: a page's list, or a statement."""
        char = self._next_char()
        if char == "}":
            self._i += 1
            self.form = "statement"
            return
        while True:
            if char != '"':
                raise _Fault("expected a key in double quotes")
            key = self._value()[0]
            if self._next_char() != ":":
                raise _Fault("expected ':' after a key")
            self._i += 1
            char = self._next_char()
            if not self.form and key == "statements" and char == "[":
                self.form = "page"
                self._i += 1
                yield from self._array()
            elif not self.form and key in SPINE:
                self.form = "statement"
                return
            else:
                value = self._value()[0]
                if key == "more":
                    self.more = value
            char = self._next_char()
            if char == ",":
                self._i += 1
                char = self._next_char()
                continue
            if char == "}":
                self._i += 1
                break
            raise _Fault("the file ends inside an object" if not char else "expected ',' or '}'")
        if not self.form:
            self.form = "statement"

    def _fill(self) -> bool:
        """Drop the text already read and decode the next chunk; False at the end of the file."""
        if self._eof:
            return False
        self._text = self._text[self._i :]
        self._i = 0
        data = self._fh.read(CHUNK_BYTES)
        self._eof = not data
        self._text += self._decoder.decode(data, final=self._eof)
        return not self._eof

    def _next_char(self) -> str:
        """Skip whitespace and return the next character (not consumed), or "" at the end of the file."""
        while True:
            text, i = self._text, self._i
            n = len(text)
            while i < n and text[i] in _WS:
                i += 1
            self._i = i
            if i < n:
                return text[i]
            if not self._fill():
                return ""

    def _value(self) -> tuple[Any, str]:
        """Decode the JSON value at the cursor, reading on while it is incomplete; return it and its text.

        A value is taken only when some text follows it (or the file has ended), since a number
        cut by the end of a chunk would otherwise be read short; an error well before the end of
        the text read so far is a fault, one at its end may be a value cut by the chunk.
        """
        while True:
            text = self._text
            try:
                value, end = _DECODER.raw_decode(text, self._i)
            except json.JSONDecodeError as exc:
                error = exc.msg.removesuffix(" starting at")  # the position is the chunk's, not the file's
                if exc.pos + _MARGIN < len(text) and error != "Unterminated string":
                    raise _Fault(error) from None
            except RecursionError:
                raise _Fault("values nested too deeply") from None
            else:
                if end + _MARGIN <= len(text) or self._eof:
                    start, self._i = self._i, end
                    return value, text[start:end]
                error = ""
            if len(text) - self._i > STATEMENT_LIMIT:
                raise _Fault(f"a statement longer than {limit_text()} is not read"
                             + (f" ({error})" if error else ""))
            if not self._fill() and error:
                raise _Fault(error)

    def _rest(self) -> str:
        """The text from the cursor on, at most ``raw_limit`` characters (read on to reach that)."""
        while len(self._text) - self._i < self._raw_limit and self._fill():
            pass
        return self._text[self._i : self._i + self._raw_limit]


def limit_text() -> str:
    """Say how long a statement may be: "16 MiB"."""
    if STATEMENT_LIMIT % (1 << 20) == 0:
        return f"{STATEMENT_LIMIT >> 20} MiB"
    return f"{STATEMENT_LIMIT:,} characters"


def utf8_problem_in(fh: BinaryIO) -> str | None:
    """Say why an open file is not UTF-8 text (where its first bad byte is), or return None; read in chunks."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    fed = 0
    while True:
        data = fh.read(CHUNK_BYTES)
        if data.isascii() and not decoder.getstate()[0]:
            fed += len(data)
            if not data:
                return None
            continue
        pending = len(decoder.getstate()[0])
        try:
            decoder.decode(data, final=not data)
        except UnicodeDecodeError as exc:  # said as the whole-file check says it: the bytes fed start there
            return utf8_problem(bytes(exc.object), fed - pending)
        if not data:
            return None
        fed += len(data)
