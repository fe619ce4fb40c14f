"""The study: every assumption of an answer, written once in a YAML file, validated, and resolved once.

:func:`load_study` reads and validates a study file (:mod:`~training_roi.study.model`), and
:func:`study_from_text` a study sent as text, with the same messages;
:func:`plan_study` resolves it once into the settings each stage takes (:mod:`~training_roi.study.plan`);
:func:`starter_study` writes a commented starter from a warehouse (:mod:`~training_roi.study.starter`).
"""

from training_roi.errors import StudyError
from training_roi.study.model import (
    KPIS,
    METHOD_CHOICES,
    Attribution,
    Baseline,
    Comparison,
    Costs,
    Isolation,
    ParticipantTime,
    Population,
    Program,
    Rollout,
    Sensitivity,
    Study,
    Threshold,
    Value,
    Windows,
    load_study,
    study_from_text,
)
from training_roi.study.plan import IsolationPlan, PopulationRule, StudyPlan, WindowPlan, plan_study
from training_roi.study.starter import starter_study

__all__ = [
    "KPIS",
    "METHOD_CHOICES",
    "Attribution",
    "Baseline",
    "Comparison",
    "Costs",
    "Isolation",
    "IsolationPlan",
    "ParticipantTime",
    "Population",
    "PopulationRule",
    "Program",
    "Rollout",
    "Sensitivity",
    "Study",
    "StudyError",
    "StudyPlan",
    "Threshold",
    "Value",
    "WindowPlan",
    "Windows",
    "load_study",
    "plan_study",
    "starter_study",
    "study_from_text",
]
