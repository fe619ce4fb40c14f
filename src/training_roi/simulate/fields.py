"""Field values as the exports spell them: Salesforce ids, UUIDs, datetimes, dates, empty fields, emails.

Ids and UUIDs are built as byte arrays and turned into string Series without a Python loop, so
orgs of millions of records stay fast.
"""

from __future__ import annotations

import unicodedata

import numpy as np
import polars as pl
import pyarrow as pa


def _fixed_width(chars: np.ndarray) -> pl.Series:
    """Turn an ``(n, w)`` array of ASCII codes into a string Series without a Python loop."""
    n, w = chars.shape
    data = np.ascontiguousarray(chars, dtype=np.uint8).tobytes()
    offsets = np.arange(0, (n + 1) * w, w, dtype=np.int64) if n else np.zeros(1, np.int64)
    arr = pa.Array.from_buffers(pa.large_string(), n, [None, pa.py_buffer(offsets), pa.py_buffer(data)])
    return pl.Series(pl.from_arrow(arr)).cast(pl.String)


_BASE62 = np.frombuffer(b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz", np.uint8)
_SUFFIX = np.frombuffer(b"ABCDEFGHIJKLMNOPQRSTUVWXYZ012345", np.uint8)
_POD = b"Dn0"  # pod identifier and reserved character of this org's ids


def _salesforce_ids(prefix: str, counters: np.ndarray) -> pl.Series:
    """Build 18-character Salesforce ids (15-character id + case-safe suffix), vectorised.

    The 15-character id is the key prefix, a pod identifier, a reserved ``0`` and a 9-digit
    base-62 counter. The suffix encodes, per 5-character chunk, which characters are upper case:
    bit ``i`` is set when character ``i`` is ``A``–``Z``, and the 5-bit number indexes
    ``A–Z0–5``. That makes the 18-character form safe to compare case-insensitively.
    """
    counters = np.asarray(counters, dtype=np.int64)
    n = counters.size
    head = np.frombuffer(prefix.encode() + _POD, np.uint8)
    chars = np.empty((n, 18), np.uint8)
    chars[:, :6] = head
    # Base-62 digits with float64 arithmetic, much faster than int64 division and exact because
    # one int64 split leaves both halves far below 2**53.
    high, low = np.divmod(counters, 62**4)
    for cols, part in ((range(14, 10, -1), low), (range(10, 5, -1), high)):
        rest = part.astype(np.float64)
        for col in cols:
            quotient = np.floor(rest / 62.0)
            chars[:, col] = _BASE62[(rest - quotient * 62.0).astype(np.intp)]
            rest = quotient
    upper = ((chars[:, :15] >= 65) & (chars[:, :15] <= 90)).view(np.uint8).reshape(n, 3, 5)
    bits = upper[:, :, 0] | upper[:, :, 1] << 1 | upper[:, :, 2] << 2 | upper[:, :, 3] << 3 | upper[:, :, 4] << 4
    chars[:, 15:] = _SUFFIX[bits]
    return _fixed_width(chars)


def _id_counters(rng: np.random.Generator, n: int, order: np.ndarray | None = None) -> np.ndarray:
    """Return increasing, unique record counters; later records (by ``order``) get larger ones."""
    base = int(rng.integers(62**5, 62**6))
    steps = rng.integers(1, 4, n).cumsum()
    counters = base + steps
    if order is None:
        return counters
    ranks = np.empty(n, np.int64)
    ranks[np.argsort(order, kind="stable")] = np.arange(n)
    return counters[ranks]


_HEX = np.frombuffer(b"0123456789abcdef", np.uint8)


def _uuid4(rng: np.random.Generator, n: int) -> pl.Series:
    """Return ``n`` random (version 4) UUID strings drawn from ``rng``: reproducible statement ids."""
    raw = rng.integers(0, 256, (n, 16), dtype=np.uint8)
    raw[:, 6] = (raw[:, 6] & 0x0F) | 0x40
    raw[:, 8] = (raw[:, 8] & 0x3F) | 0x80
    hexed = np.empty((n, 32), np.uint8)
    hexed[:, 0::2] = _HEX[raw >> 4]
    hexed[:, 1::2] = _HEX[raw & 0x0F]
    out = np.full((n, 36), ord("-"), np.uint8)
    for lo, hi, at in ((0, 8, 0), (8, 12, 9), (12, 16, 14), (16, 20, 19), (20, 32, 24)):
        out[:, at : at + hi - lo] = hexed[:, lo:hi]
    return _fixed_width(out)


def _sf_datetime(seconds: np.ndarray) -> pl.Series:
    """Format UTC epoch seconds as Salesforce export datetimes (``2025-03-04T15:02:11.000Z``)."""
    return pl.from_epoch(pl.Series(np.asarray(seconds, np.int64)), time_unit="s").dt.strftime(
        "%Y-%m-%dT%H:%M:%S.000Z"
    )


def _dates(epoch_days: np.ndarray) -> pl.Series:
    """Return epoch day numbers as a polars Date Series (written ``YYYY-MM-DD``)."""
    return pl.Series(np.asarray(epoch_days, np.int32)).cast(pl.Date)


def _masked(values: pl.Series, keep: np.ndarray) -> pl.Series:
    """Return ``values`` with nulls where ``keep`` is false (an empty CSV field)."""
    return pl.select(pl.when(pl.Series(keep)).then(values)).to_series()


def _slug(text: str) -> str:
    """Fold a name to the lower-case ASCII letters used in email addresses (José → jose)."""
    folded = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode().lower()
    return "".join(c for c in folded if "a" <= c <= "z")


def _mixed_case(email: str, style: int) -> str:
    """Spell an address with upper-case letters, as people and some LMSs do.

    ``jane.doe@example.com`` becomes ``Jane.Doe@Example.COM`` (style 0) or ``Jane.Doe@example.com``
    (style 1): the same mailbox, compared case-insensitively.
    """
    local, _, domain = email.partition("@")
    local = ".".join(p[:1].upper() + p[1:] for p in local.split("."))
    if style == 0:
        parts = domain.split(".")
        domain = ".".join([p[:1].upper() + p[1:] for p in parts[:-1]] + [parts[-1].upper()])
    return f"{local}@{domain}"
