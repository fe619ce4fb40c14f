"""Attribute: share each won deal's revenue among the touches (training, campaigns, tasks) before it.

    >>> from training_roi.attribute import linear, markov_removal
    >>> table = linear(touches, journeys)            # one row per touch: share, credited_value
    >>> markov_removal(touches, journeys).channels   # removal effect and credit per channel

Attribution answers "which touches were on the path", not "what did training cause": report it
next to the incremental lift of :mod:`training_roi.isolate`, never instead of it.
"""

from training_roi.attribute.hybrid import Calibration, calibrate
from training_roi.attribute.journeys import KINDS, Journeys, build_journeys
from training_roi.attribute.markov import MarkovResult, markov_removal
from training_roi.attribute.result import AttributionResult, attribute_study
from training_roi.attribute.rules import first_touch, last_touch, linear, position_based, time_decay
from training_roi.attribute.settings import MODELS, Attribution, AttributionModel
from training_roi.attribute.shapley import MAX_CHANNELS, shapley_channels, shapley_touches
from training_roi.attribute.split import split_among_learners

__all__ = [
    "KINDS",
    "MAX_CHANNELS",
    "MODELS",
    "Attribution",
    "AttributionModel",
    "AttributionResult",
    "Calibration",
    "Journeys",
    "MarkovResult",
    "attribute_study",
    "build_journeys",
    "calibrate",
    "first_touch",
    "last_touch",
    "linear",
    "markov_removal",
    "position_based",
    "shapley_channels",
    "shapley_touches",
    "split_among_learners",
    "time_decay",
]
