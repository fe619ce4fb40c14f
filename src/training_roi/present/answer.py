"""An answer of any kind — a training program's or a CRM roll-out's — written, printed or serialised.

The command line and any other caller hand :func:`training_roi.evaluation.evaluate`'s answer here
without asking which kind it is.
"""

from __future__ import annotations

import contextvars
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from rich.console import RenderableType

from training_roi._format import number_style
from training_roi.evaluation import Evaluation, RolloutEvaluation
from training_roi.present.attribution import write_attribution
from training_roi.present.churn import write_churn_risk
from training_roi.present.console import evaluation_panel
from training_roi.present.html import write_html
from training_roi.present.layout import fitted
from training_roi.present.lesson_map import write_lesson_map
from training_roi.present.next_lesson import write_next_lessons
from training_roi.present.onepager import write_summary
from training_roi.present.result_json import result_document, write_result
from training_roi.present.rollout import rollout_document, rollout_panel, write_rollout
from training_roi.present.spreadsheet import write_participant_time, write_spreadsheets
from training_roi.present.subgroups import write_subgroups
from training_roi.present.workbook import write_workbook

__all__ = ["answer_document", "answer_panel", "write_answer"]

Answer = Evaluation | RolloutEvaluation


def write_answer(answer: Answer, out_dir: Path) -> dict[str, Path]:
    """Write every file of the answer into ``out_dir``; return them by what they are.

    A training program's answer: ``result`` (result.json), ``report`` (report.html), the seed's
    spreadsheets ``learners`` and ``opportunities``, the ``workbook`` (roi_model.xlsx, the model
    with live formulas), the executive one-pager ``summary`` (summary.html) and ``summary pdf``,
    ``attribution`` when attribution ran, ``subgroups`` (subgroups.csv) when the study asks for the
    effect by subgroup, ``lesson map`` (lesson_map.csv) when it asks for the lesson map, ``next
    lessons`` (next_lessons.csv, for the LMS) when it asks for each rep's next lessons, and ``churn
    risk`` (churn_risk.csv) when it asks for the accounts' churn risk. A
    roll-out's: ``result`` and ``report``. Both: ``participant time`` (each participant's minutes and
    their source) when participant time was derived from learning records.
    """
    with number_style(answer.study.currency, answer.study.locale):
        return _write(answer, out_dir)


def _write(answer: Answer, out_dir: Path) -> dict[str, Path]:
    time = write_participant_time(answer.costs, out_dir)
    timed = {"participant time": time} if time is not None else {}
    if isinstance(answer, RolloutEvaluation):
        result, page = write_rollout(answer, out_dir)
        return {"result": result, "report": page, **timed}
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="attribution-csv") as pool:
        # The attribution table (a million rows on a large org) is written by Polars, which leaves the
        # interpreter free: the other files, written in Python, are made meanwhile.
        table = (pool.submit(contextvars.copy_context().run, write_attribution, answer.attribution, out_dir)
                 if answer.attribution is not None else None)
        learners, opportunities = write_spreadsheets(answer, out_dir)
        summary_html, summary_pdf = write_summary(answer, out_dir)
        files = {"learners": learners, "opportunities": opportunities, "workbook": write_workbook(answer, out_dir),
                 "summary": summary_html, "summary pdf": summary_pdf, **timed}
        if table is not None:
            files["attribution"] = table.result()
        for name, write in (("subgroups", write_subgroups), ("lesson map", write_lesson_map),
                            ("next lessons", write_next_lessons), ("churn risk", write_churn_risk)):
            written = write(answer, out_dir)
            if written is not None:
                files[name] = written
        files["result"] = write_result(answer, out_dir)
        files["report"] = write_html(answer, out_dir)
    return files


def answer_document(answer: Answer) -> str:
    """The answer's result document (JSON text, as result.json holds it)."""
    if isinstance(answer, RolloutEvaluation):
        return rollout_document(answer)
    return result_document(answer)


def answer_panel(answer: Answer, *, width: int | None = None) -> RenderableType:
    """The answer for the console; with ``width`` (the terminal's), laid out so that no figure is cut."""
    with number_style(answer.study.currency, answer.study.locale):
        panel = rollout_panel(answer) if isinstance(answer, RolloutEvaluation) else evaluation_panel(answer)
    return panel if width is None else fitted(panel, width)
