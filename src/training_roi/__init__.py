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
