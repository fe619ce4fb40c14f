"""Evaluate: the one entry point that turns a study and a warehouse into an answer.

The command line, the Python facade and any server call these and nothing below them:

* :func:`evaluate` — a study (a file, a :class:`~training_roi.study.Study` or a resolved
  :class:`~training_roi.study.StudyPlan`) answered from a warehouse: a training program's
  :class:`Evaluation`, or a CRM roll-out's :class:`RolloutEvaluation`;
* :func:`evaluate_portfolio` — several programs side by side (:class:`Portfolio`);
* :func:`evaluate_attribution` — the attribution table alone, held to the program's lift;
* :func:`plan_rollout` — a randomised roll-out designed from the warehouse.

Presenters (:mod:`training_roi.present`) format what these return.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

from ibis.backends import BaseBackend

from training_roi._format import number_style
from training_roi.attribute import MODELS, AttributionResult
from training_roi.errors import StudyError, TrainingRoiError
from training_roi.evaluation.design import RolloutPlan, plan_rollout
from training_roi.evaluation.levels import REVENUE_BENEFIT
from training_roi.evaluation.portfolio import Portfolio, portfolio
from training_roi.evaluation.program import Progress, evaluate_program, population_scope
from training_roi.evaluation.results import RESULT_SCHEMA, Evaluation, KpiResult, LearnerRow, WindowResult
from training_roi.evaluation.rollout import ROLLOUT_SCHEMA, RolloutEvaluation, RolloutKpi, evaluate_rollout
from training_roi.study import Study, StudyPlan, load_study, plan_study

__all__ = [
    "RESULT_SCHEMA",
    "REVENUE_BENEFIT",
    "ROLLOUT_SCHEMA",
    "Evaluation",
    "KpiResult",
    "LearnerRow",
    "Portfolio",
    "Progress",
    "RolloutEvaluation",
    "RolloutKpi",
    "RolloutPlan",
    "WindowResult",
    "evaluate",
    "evaluate_attribution",
    "evaluate_portfolio",
    "evaluate_program",
    "evaluate_rollout",
    "plan_rollout",
    "population_scope",
]


def _plan(study: Study | StudyPlan | str | Path, method: str | None) -> StudyPlan:
    if isinstance(study, StudyPlan):
        return study if method is None else plan_study(study.study, method=method)
    return plan_study(study if isinstance(study, Study) else load_study(study), method=method)


def evaluate(con: BaseBackend, study: Study | StudyPlan | str | Path, *, method: str | None = None,
             progress: Progress | None = None) -> Evaluation | RolloutEvaluation:
    """Answer ``study`` from the warehouse ``con``.

    ``study`` is a study file, a loaded :class:`~training_roi.study.Study` or a resolved plan.
    ``method`` overrides the study's ``isolation.method`` (``did``, ``all`` or a registered
    estimator). A study with a ``rollout`` section is a CRM roll-out and gets a
    :class:`RolloutEvaluation`; every other study a training program's :class:`Evaluation`.

    Raises
    ------
    StudyError
        The study file is invalid, or the warehouse cannot answer it (the message says what to change).
    """
    plan = _plan(study, method)
    # The answer's sentences (credit reasons, warnings) word money as the study's readers do.
    with number_style(plan.study.currency, plan.study.locale):
        if plan.rollout is not None:
            return evaluate_rollout(con, plan)
        return evaluate_program(con, plan, progress=progress)


def evaluate_attribution(con: BaseBackend, study: Study | StudyPlan | str | Path, *, model: str | None = None,
                         progress: Progress | None = None) -> AttributionResult:
    """The attribution table of a training study, its training credit held to the program's lift.

    ``model`` overrides ``attribution.model``.

    Raises
    ------
    StudyError
        An unknown model, a roll-out study, or a study the warehouse cannot answer.
    """
    plan = _plan(study, None)
    if model is not None and model not in MODELS:
        raise StudyError(f"attribution model {model}: expected one of {', '.join(MODELS)}")
    if plan.rollout is not None:
        raise StudyError(f"study {plan.name}: a CRM roll-out study has no training touches to attribute")
    settings = plan.attribution.model_copy(update={"enabled": True})
    result = evaluate_program(con, replace(plan, attribution=settings), progress=progress,
                              attribution_model=model).attribution
    assert result is not None  # attribution is enabled above
    return result


def evaluate_portfolio(con: BaseBackend, studies: Sequence[Study | str | Path], *,
                       progress: Progress | None = None) -> Portfolio:
    """Several training programs' studies answered and set side by side (:func:`portfolio`).

    Raises
    ------
    TrainingRoiError
        The same study given twice, studies in different currencies, or a study the warehouse
        cannot answer.
    """
    loaded = [(str(s), load_study(s)) if not isinstance(s, Study) else (s.name, s) for s in studies]
    first: dict[str, str] = {}
    for source, study in loaded:
        if study.hash in first:
            raise TrainingRoiError(f"{source}: the same study as {first[study.hash]} (hash {study.hash}): "
                                   "give each program's study once")
        first[study.hash] = source
    evaluations = []
    for i, (_, study) in enumerate(loaded):
        if progress is not None:
            progress(f"evaluating {study.name}", i / len(loaded))
        answer = evaluate(con, study)
        if not isinstance(answer, Evaluation):
            raise StudyError(f"study {study.name}: a CRM roll-out study cannot be part of a training portfolio")
        evaluations.append(answer)
    try:
        return portfolio(evaluations)
    except ValueError as exc:
        raise TrainingRoiError(f"portfolio: {exc}") from exc
