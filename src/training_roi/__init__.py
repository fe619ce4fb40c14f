"""training-roi: did the training program pay off, by how much, and how sure are we? A quick start.

The whole flow in a few lines — an org's exports (here a simulated one) loaded into a warehouse,
learners linked to the CRM, a study answered::

    >>> import training_roi as roi
    >>> from training_roi.simulate import simulate
    >>> info = simulate("org", reps=80, months=18, seed=3)       # or your CRM and LMS exports
    >>> con = roi.connect("roi.duckdb")                          # DuckDB by default; any Ibis backend
    >>> roi.ingest_folder("org", con).ok                         # every row loaded or quarantined
    True
    >>> roi.link(con).linked_users > 0                           # learners ↔ CRM users
    True
    >>> study = roi.Study.model_validate({                       # or roi.load_study("study.yaml")
    ...     "name": "Sales Excellence",
    ...     "program": {"activities": ["https://lms.example.com/xapi/activities/course/sales-excellence"]},
    ...     "costs": {"participant_time": {"hourly_rate": 60}},
    ... })
    >>> answer = roi.evaluate(con, study)                        # lift, revenue, cost, ROI, with intervals
    >>> print(answer.summary())                                  # doctest: +ELLIPSIS
    Sales Excellence (study ...), 180-day window, difference-in-differences in each learner's own windows
    ...
    >>> sorted(answer.primary.intervals)                          # ROI, revenue, benefit, lift: each with its interval
    ['benefit', 'incremental_revenue', 'lift', 'roi_pct']

``roi.evaluate`` answers a CRM roll-out study (a ``rollout:`` section) too; ``evaluate_portfolio``
sets several programs side by side. Every error the product raises on purpose is a
:class:`TrainingRoiError` whose message names the file, row, field or key to fix.
"""

from __future__ import annotations

import typing
from importlib import import_module as _import_module
from importlib.metadata import PackageNotFoundError as _PackageNotFoundError
from importlib.metadata import version as _version

from training_roi.errors import (
    MappingError,
    NotApplicable,
    SourceError,
    StudyError,
    TrainingRoiError,
    WarehouseError,
)

if typing.TYPE_CHECKING:
    from training_roi.evaluation import (
        Evaluation,
        Portfolio,
        RolloutEvaluation,
        evaluate,
        evaluate_attribution,
        evaluate_portfolio,
    )
    from training_roi.ingest.folder import IngestInfo, ingest_folder
    from training_roi.ingest.mapping import load_mapping
    from training_roi.linking import LinkInfo, link
    from training_roi.study import Study, StudyPlan, load_study, plan_study, starter_study
    from training_roi.warehouse.connection import connect
    from training_roi.warehouse.quality import QualityReport, quality_report

# The public names below are imported on first use: the statistics stack (scikit-learn, SciPy,
# pandas) behind ``evaluate`` costs seconds to import, and a command line that only loads or
# syncs data should not pay for it.
_LAZY: dict[str, str] = {
    "Evaluation": "training_roi.evaluation",
    "Portfolio": "training_roi.evaluation",
    "RolloutEvaluation": "training_roi.evaluation",
    "evaluate": "training_roi.evaluation",
    "evaluate_attribution": "training_roi.evaluation",
    "evaluate_portfolio": "training_roi.evaluation",
    "IngestInfo": "training_roi.ingest.folder",
    "ingest_folder": "training_roi.ingest.folder",
    "load_mapping": "training_roi.ingest.mapping",
    "LinkInfo": "training_roi.linking",
    "link": "training_roi.linking",
    "Study": "training_roi.study",
    "StudyPlan": "training_roi.study",
    "load_study": "training_roi.study",
    "plan_study": "training_roi.study",
    "starter_study": "training_roi.study",
    "connect": "training_roi.warehouse.connection",
    "QualityReport": "training_roi.warehouse.quality",
    "quality_report": "training_roi.warehouse.quality",
}


def __getattr__(name: str) -> object:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(_import_module(module), name)
    globals()[name] = value  # later look-ups find it without coming back here
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))


try:
    __version__ = _version("training-roi")
except _PackageNotFoundError:  # running from a source tree without installing
    __version__ = "0.0.0"

__all__ = [
    "Evaluation",
    "IngestInfo",
    "LinkInfo",
    "MappingError",
    "NotApplicable",
    "Portfolio",
    "QualityReport",
    "RolloutEvaluation",
    "SourceError",
    "Study",
    "StudyError",
    "StudyPlan",
    "TrainingRoiError",
    "WarehouseError",
    "__version__",
    "connect",
    "evaluate",
    "evaluate_attribution",
    "evaluate_portfolio",
    "ingest_folder",
    "link",
    "load_mapping",
    "load_study",
    "plan_study",
    "quality_report",
    "starter_study",
]
