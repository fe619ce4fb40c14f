"""Random streams, and the draws that several parts of the model share.

One stream per part (:func:`_stream`) keeps each file's random numbers apart from the others', so
that a change to how one file is written changes no other file, and one seed gives the same
organisation and pipeline in every scenario.
"""

from __future__ import annotations

import zlib

import numpy as np
import polars as pl


def _stream(seed: int, name: str) -> np.random.Generator:
    """Return the random generator of one part of the simulation.

    Seeded from ``seed`` and a CRC-32 of ``name`` (never Python's salted ``hash()``), so parts
    are independent of each other and of the order in which they run.
    """
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence([seed, zlib.crc32(name.encode())])))


def _pick(rng: np.random.Generator, options: tuple[str, ...] | list[str], n: int,
          p: tuple[float, ...] | None = None) -> pl.Series:
    """Draw ``n`` values from ``options`` (with probabilities ``p``) as a string Series."""
    probs = None if p is None else np.asarray(p, float) / np.sum(p)
    idx = rng.choice(len(options), size=n, p=probs)
    return pl.Series(list(options), dtype=pl.String).gather(idx)


def _at_least(rng: np.random.Generator, candidates: np.ndarray, share: float, minimum: int) -> np.ndarray:
    """Choose ``share`` of ``candidates`` (at least ``minimum``, if there are that many), sorted.

    Small test orgs still get every kind of mess, so the tests always have something to find.
    """
    n = candidates.size
    k = min(n, max(minimum, int(np.rint(share * n))))
    return np.sort(rng.choice(candidates, size=k, replace=False)) if k else candidates[:0]


def _logistic(x: np.ndarray) -> np.ndarray:
    """Return the logistic function of ``x``."""
    return np.asarray(1.0 / (1.0 + np.exp(-x)), dtype=np.float64)


def _enrol_intercept(skill: np.ndarray, slope: float, share: float) -> float:
    """Solve for the intercept that makes ``mean(logistic(a + slope·skill)) == share``."""
    lo, hi = -20.0, 20.0
    for _ in range(80):
        mid = (lo + hi) / 2
        if _logistic(mid + slope * skill).mean() < share:
            lo = mid
        else:
            hi = mid
    return (lo + hi) / 2


def _flag(template: np.ndarray, where: np.ndarray) -> np.ndarray:
    """Return a boolean array shaped like ``template``, true at the indices ``where``."""
    out = np.zeros_like(template, dtype=bool)
    out[where] = True
    return out
