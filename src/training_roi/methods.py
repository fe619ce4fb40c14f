"""The names of the estimators and attribution models, without the packages that implement them.

Importing :mod:`training_roi.isolate` or :mod:`training_roi.attribute` loads scikit-learn, SciPy and
pandas; a command line that only lists the names in its help must not pay for that. The registry
(:data:`training_roi.isolate.METHODS`) and the attribution settings
(:data:`training_roi.attribute.MODELS`) list the same names in the same order, which the tests check.
"""

from __future__ import annotations

__all__ = ["ATTRIBUTION_MODELS", "ESTIMATOR_NAMES", "METHOD_CHOICES"]

ESTIMATOR_NAMES: tuple[str, ...] = (
    "twfe", "event_study", "staggered", "staggered_dr", "drdid", "psm", "ipw", "cem", "trend", "participant",
    "naive_before_after", "naive_after",
)
"""Every registered estimator's name, in the order lists show them."""

METHOD_CHOICES: tuple[str, ...] = ("did", "all", *ESTIMATOR_NAMES, "dose")
"""Isolation methods a study can name: the windowed DiD, all side by side, or one estimator of
:data:`training_roi.isolate.METHODS` (the estimator registry), or ``dose`` for a micro-lesson program (the
effect per lesson × the lessons each rep took)."""

ATTRIBUTION_MODELS: tuple[str, ...] = (
    "first_touch", "last_touch", "linear", "time_decay", "position_based", "markov", "shapley",
)
"""Every attribution model, in the order the comparison lists them."""
