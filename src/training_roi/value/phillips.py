"""Phillips' five levels for one program, each figure traceable to the rows it came from.

Level 1 (reaction) and level 3 (application) summarise ``survey_response`` answers on the 1–5
scale; level 3 adds the before/after change of behaviour KPIs the caller computed from the CRM.
Level 2 (learning) reads ``learning_record``; level 4 (impact) records the isolated KPI effects;
level 5 (ROI) sets the monetised benefits against the fully loaded cost, with the intangible
benefits listed beside it, not monetised (Phillips: what cannot be credibly converted to money is
reported, never guessed).

Level 2 rules, chosen so that each learner counts once per assessment:

* **scores and pass rate** use each learner's *last* attempt at each of the program's activities
  (a retake replaces the earlier result); pre-tests are left out, since they measure what people
  knew before. An attempt's outcome is ``success``, or the verb ``passed``/``failed`` when the
  source gives no success flag.
* **pre/post**: an activity is a pre-test (post-test) when its id, else its name, holds the word
  ``pre`` (``post``), alone or as in ``pre-test``, ``pretest``, ``PreQuiz`` — not inside another
  word such as "presentation". A pre- and a post-test pair up when their ids match with that
  word taken out, or when the program has exactly one of each. A learner's gain is the last
  post-test score − the first pre-test score. When no learner has such a pair, the fallback is
  two attempts at the same assessment: the first before the learner's first completion of one of
  the program's activities, the last at or after it. A learner with several pairs has their
  gains averaged, so learners are the independent units of the paired t interval.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from decimal import Decimal
from typing import Any

import numpy as np
import polars as pl
import scipy.stats
from ibis.backends import BaseBackend
from ibis.expr.types import Table as IbisTable
from numpy.typing import NDArray

from training_roi.value.costs import CostBreakdown
from training_roi.value.monetise import Benefit, EffectLike
from training_roi.value.roi import Amount, ROIFigures, roi
from training_roi.warehouse.connection import require_tables

__all__ = [
    "ApplicationLevel", "ImpactLevel", "KpiImpact", "LearningLevel", "PairedChange", "PhillipsEvaluation",
    "QuestionSummary", "ROILevel", "SurveyLevel", "phillips_levels",
]

SCALE = (1, 2, 3, 4, 5)
"""The answer scale of reaction and application questions."""
_MARKS = {kind: re.compile(rf"(?<![a-z]){kind}(?:[-_ ]?(?:test|assessment|quiz|exam|check))?(?![a-z])", re.I)
          for kind in ("pre", "post")}


@dataclass(frozen=True)
class QuestionSummary:
    """The answers to one question: ``n`` on the 1–5 scale, their mean and counts per score."""

    question: str
    n: int
    mean: float | None
    distribution: dict[int, int]
    off_scale: int
    """Answers given but not one of 1–5 (left out of mean and distribution)."""
    unanswered: int


@dataclass(frozen=True)
class SurveyLevel:
    """Level 1 (reaction) or the survey part of level 3 (application).

    ``overall_mean`` pools every on-scale answer (it is not the mean of the question means);
    ``respondents`` counts distinct respondent emails; ``source_rows`` the answers read.
    """

    level: str
    questions: tuple[QuestionSummary, ...]
    n: int
    overall_mean: float | None
    respondents: int
    by_role: dict[str, int]
    source_rows: int


@dataclass(frozen=True)
class PairedChange:
    """Before/after means of paired observations and the mean change with its paired t interval.

    ``n`` pairs came from ``source_rows`` rows; ``dropped`` rows lacked a before or an after value.
    The interval is ``None`` with fewer than two pairs.
    """

    name: str
    n: int
    mean_before: float | None
    mean_after: float | None
    mean_change: float | None
    interval: tuple[float, float] | None
    confidence: float
    source_rows: int
    dropped: int = 0

    def __str__(self) -> str:
        around = "" if self.interval is None else f" [{self.interval[0]:+.4g}, {self.interval[1]:+.4g}]"
        return f"{self.name}: {_show(self.mean_change, '+.4g')}{around} over {self.n} pairs"


@dataclass(frozen=True)
class LearningLevel:
    """Level 2: assessment scores, pass rate and pre/post gain (rules in the module docstring)."""

    source_rows: int
    """Learning records of the program's activities."""
    scores_n: int
    score_mean: float | None
    score_median: float | None
    score_rows: int
    passed: int
    failed: int
    pass_rate: float | None
    decided_rows: int
    pre_post: PairedChange | None


@dataclass(frozen=True)
class ApplicationLevel:
    """Level 3: application survey answers and the before/after change of behaviour KPIs."""

    survey: SurveyLevel
    behaviour: tuple[PairedChange, ...]
    behaviour_rows: int


@dataclass(frozen=True)
class KpiImpact:
    """One isolated KPI effect, as the isolation stage reported it (level 4)."""

    name: str
    effect: float
    interval: tuple[float, float] | None
    verdict: str
    method: str

    @classmethod
    def of(cls, name: str, effect: EffectLike, *, verdict: str) -> KpiImpact:
        """The record of an estimator's effect."""
        bounds = (effect.ci_low, effect.ci_high)
        return cls(name, effect.estimate, bounds if all(map(math.isfinite, bounds)) else None, verdict,
                   effect.method)

    def __str__(self) -> str:
        around = "" if self.interval is None else f" [{self.interval[0]:+.4g}, {self.interval[1]:+.4g}]"
        return f"{self.name}: {self.effect:+.4g}{around} by {self.method}: {self.verdict}"


@dataclass(frozen=True)
class ImpactLevel:
    """Level 4: the isolated KPI effects, as given."""

    effects: tuple[KpiImpact, ...]


@dataclass(frozen=True)
class ROILevel:
    """Level 5: monetised benefits against the fully loaded cost, and the intangibles beside them."""

    benefits: tuple[Benefit, ...]
    figures: ROIFigures
    intangibles: tuple[str, ...]


def _json(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(k): _json(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json(v) for v in value]
    return value


def _show(value: float | Decimal | None, spec: str) -> str:
    return "n/a" if value is None else format(value, spec)


@dataclass(frozen=True)
class PhillipsEvaluation:
    """The five levels of one program's evaluation."""

    program: str
    activities: tuple[str, ...]
    reaction: SurveyLevel
    learning: LearningLevel
    application: ApplicationLevel
    impact: ImpactLevel
    roi: ROILevel

    def asdict(self) -> dict[str, Any]:
        """A JSON-ready dictionary for ``result.json``; money as exact decimal strings."""
        levels = {"reaction": asdict(self.reaction), "learning": asdict(self.learning),
                  "application": asdict(self.application), "impact": asdict(self.impact)}
        return {"program": self.program, "activities": list(self.activities), **_json(levels),
                "roi": {"benefits": [b.asdict() for b in self.roi.benefits], "figures": self.roi.figures.asdict(),
                        "intangibles": list(self.roi.intangibles)}}

    def __str__(self) -> str:
        r, le, a, f = self.reaction, self.learning, self.application, self.roi.figures
        rate = None if le.pass_rate is None else le.pass_rate * 100
        lines = [f"Phillips evaluation of {self.program}",
                 f"L1 reaction     mean {_show(r.overall_mean, '.2f')} of 5 ({r.n} answers, {r.respondents} "
                 "respondents)",
                 f"L2 learning     score mean {_show(le.score_mean, '.1f')} (n {le.scores_n}); pass rate "
                 f"{_show(rate, '.1f')}% ({le.passed} of {le.passed + le.failed})",
                 *(f"                {c}" for c in [le.pre_post] if c is not None),
                 f"L3 application  mean {_show(a.survey.overall_mean, '.2f')} of 5 ({a.survey.n} answers)",
                 *(f"                {c}" for c in a.behaviour),
                 *(f"L4 impact       {e}" for e in self.impact.effects),
                 f"L5 ROI          benefits ${f.benefit:,.0f} vs cost ${f.cost:,.0f}: ROI {f.roi_pct:.1f}%, "
                 f"BCR {f.benefit_cost_ratio:.2f}, payback {_show(f.payback_months, '.1f')} months",
                 *(f"                {b}" for b in self.roi.benefits),
                 *(f"intangible      {i}" for i in self.roi.intangibles)]
        return "\n".join(lines)


def _frame(expr: IbisTable) -> pl.DataFrame:
    frame = pl.from_arrow(expr.to_pyarrow())
    assert isinstance(frame, pl.DataFrame)
    return frame


def _survey(con: BaseBackend, program: str, level: str) -> SurveyLevel:
    s = con.table("survey_response")
    s = s.filter((s.level == level) & (s.program == program)).select("email_norm", "role", "question", "score")
    frame = _frame(s).with_columns(pl.col("score").fill_nan(None))
    on_scale = pl.col("score").is_in([float(k) for k in SCALE])
    per_question = frame.group_by("question").agg(
        n=on_scale.sum(), mean=pl.col("score").filter(on_scale).mean(),
        off_scale=(pl.col("score").is_not_null() & ~on_scale).sum(), unanswered=pl.col("score").is_null().sum(),
        **{f"s{k}": (pl.col("score") == float(k)).sum() for k in SCALE},
    ).sort("question", nulls_last=True)
    questions = tuple(
        QuestionSummary(row["question"] or "(no question)", int(row["n"]), row["mean"],
                        {k: int(row[f"s{k}"]) for k in SCALE}, int(row["off_scale"]), int(row["unanswered"]))
        for row in per_question.iter_rows(named=True)
    )
    valid = frame.filter(on_scale)["score"].to_numpy()
    roles = frame["role"].fill_null("unknown").value_counts().sort("role")
    return SurveyLevel(level, questions, valid.size, float(valid.mean()) if valid.size else None,
                       frame["email_norm"].drop_nulls().n_unique(), {str(k): int(v) for k, v in roles.iter_rows()},
                       frame.height)


def _paired(name: str, before: NDArray[np.float64], after: NDArray[np.float64], confidence: float,
            source_rows: int, dropped: int = 0) -> PairedChange:
    diff = after - before
    n = int(diff.size)
    if n == 0:
        return PairedChange(name, 0, None, None, None, None, confidence, source_rows, dropped)
    mean = float(diff.mean())
    interval: tuple[float, float] | None = None
    if n >= 2:
        half = float(scipy.stats.t.ppf((1 + confidence) / 2, n - 1)) * float(diff.std(ddof=1)) / math.sqrt(n)
        interval = (mean - half, mean + half)
    return PairedChange(name, n, float(before.mean()), float(after.mean()), mean, interval, confidence,
                        source_rows, dropped)


def _mark(text: str | None) -> tuple[str, str] | None:
    """``("pre" | "post", stem)`` when ``text`` marks a pre- or post-test (not both)."""
    hits = [kind for kind, pattern in _MARKS.items() if text and pattern.search(text)]
    if len(hits) != 1 or text is None:
        return None
    return hits[0], _MARKS[hits[0]].sub("*", text).lower()


def _test_kinds(frame: pl.DataFrame) -> dict[str, tuple[str, str]]:
    """Activity id → (pre/post, stem), from the id, else from one of the activity's names."""
    out: dict[str, tuple[str, str]] = {}
    names = frame.group_by("activity_id").agg(pl.col("activity_name").drop_nulls().unique().sort())
    for activity, titles in names.iter_rows():
        found = _mark(activity) or next((m for t in titles if (m := _mark(t))), None)
        if found is not None:
            out[activity] = found
    return out


def _gains(pairs: pl.DataFrame, name: str, confidence: float, rows: int) -> PairedChange:
    per_learner = pairs.group_by("learner_key").agg(pl.col("before").mean(), pl.col("after").mean())
    return _paired(name, per_learner["before"].to_numpy(), per_learner["after"].to_numpy(), confidence, rows)


def _pre_post(scored: pl.DataFrame, kinds: dict[str, tuple[str, str]], activities: tuple[str, ...],
              completions: pl.DataFrame, confidence: float) -> PairedChange | None:
    pre = {a: stem for a, (kind, stem) in kinds.items() if kind == "pre"}
    post = {a: stem for a, (kind, stem) in kinds.items() if kind == "post"}
    links = [(p, q) for p in pre for q in post if pre[p] == post[q]]
    if not links and len(pre) == 1 and len(post) == 1:
        links = [(next(iter(pre)), next(iter(post)))]
    by_time = scored.sort("learner_key", "activity_id", "occurred_at", "record_key")
    first = by_time.group_by("learner_key", "activity_id", maintain_order=True).first()
    last = by_time.group_by("learner_key", "activity_id", maintain_order=True).last()
    if links:
        link = pl.DataFrame(links, schema=["pre_id", "post_id"], orient="row")
        pairs = (link.join(first.select("learner_key", pre_id="activity_id", before="score_pct"), on="pre_id")
                 .join(last.select("learner_key", post_id="activity_id", after="score_pct"),
                       on=["learner_key", "post_id"]))
        if pairs.height:
            used = (pairs.select("learner_key", activity_id="pre_id")
                    .vstack(pairs.select("learner_key", activity_id="post_id")).unique())
            return _gains(pairs, "pre/post test gain", confidence,
                          scored.join(used, on=["learner_key", "activity_id"]).height)
    done = (completions.filter(pl.col("activity_id").is_in(activities))
            .group_by("learner_key").agg(done_at=pl.col("occurred_at").min()))
    timed = scored.filter(~pl.col("activity_id").is_in(list(kinds))).join(done, on="learner_key")
    when = pl.col("occurred_at") < pl.col("done_at")
    before = (timed.filter(when).sort("occurred_at", "record_key").group_by("learner_key", "activity_id")
              .agg(before=pl.col("score_pct").first()))
    after = (timed.filter(~when).sort("occurred_at", "record_key").group_by("learner_key", "activity_id")
             .agg(after=pl.col("score_pct").last()))
    pairs = before.join(after, on=["learner_key", "activity_id"])
    if not pairs.height:
        return None
    rows = timed.join(pairs.select("learner_key", "activity_id"), on=["learner_key", "activity_id"]).height
    return _gains(pairs, "gain between attempts before and after completion", confidence, rows)


def _learning(con: BaseBackend, activities: tuple[str, ...], confidence: float) -> LearningLevel:
    r = con.table("learning_record")
    r = r.filter(r.activity_id.isin(activities) | r.course_id.isin(activities)).select(
        "record_key", "learner_key", "verb", "activity_id", "activity_name", "occurred_at", "score_pct", "success")
    frame = _frame(r).with_columns(pl.col("score_pct").fill_nan(None))
    kinds = _test_kinds(frame)
    not_pre = ~pl.col("activity_id").is_in([a for a, (kind, _) in kinds.items() if kind == "pre"])
    order = ["learner_key", "activity_id", "occurred_at", "record_key"]

    scored = frame.filter(pl.col("score_pct").is_not_null())
    final = scored.filter(not_pre).sort(order).group_by("learner_key", "activity_id").agg(pl.col("score_pct").last())
    scores = final["score_pct"].to_numpy()

    outcome = pl.coalesce(pl.col("success"), pl.when(pl.col("verb") == "passed").then(True)
                          .when(pl.col("verb") == "failed").then(False))
    decided = frame.with_columns(outcome=outcome).filter(pl.col("outcome").is_not_null() & not_pre)
    last = decided.sort(order).group_by("learner_key", "activity_id").agg(pl.col("outcome").last())
    passed = int(last["outcome"].sum())
    failed = last.height - passed

    completions = frame.filter(pl.col("verb") == "completed")
    return LearningLevel(
        source_rows=frame.height, scores_n=scores.size,
        score_mean=float(scores.mean()) if scores.size else None,
        score_median=float(np.median(scores)) if scores.size else None,
        score_rows=scored.filter(not_pre).height, passed=passed, failed=failed,
        pass_rate=passed / last.height if last.height else None, decided_rows=decided.height,
        pre_post=_pre_post(scored, kinds, activities, completions, confidence),
    )


def _behaviour(frame: pl.DataFrame, confidence: float) -> tuple[PairedChange, ...]:
    missing = sorted({"kpi", "unit_id", "before", "after"} - set(frame.columns))
    if missing:
        raise ValueError(f"the behaviour frame has no column {', '.join(missing)} "
                         "(expected kpi, unit_id, before, after)")
    twice = frame.group_by("kpi", "unit_id").len().filter(pl.col("len") > 1)
    if twice.height:
        kpi, unit, _ = twice.sort("kpi", "unit_id").row(0)
        raise ValueError(f"behaviour KPI {kpi!r} has unit {unit!r} more than once: one before/after row per unit")
    values = frame.with_columns(pl.col("before", "after").cast(pl.Float64).fill_nan(None))
    out = []
    for kpi in sorted(values["kpi"].unique().to_list()):
        rows = values.filter(pl.col("kpi") == kpi)
        ok = rows.drop_nulls(["before", "after"])
        out.append(_paired(str(kpi), ok["before"].to_numpy(), ok["after"].to_numpy(), confidence, rows.height,
                           rows.height - ok.height))
    return tuple(out)


def phillips_levels(
    con: BaseBackend,
    *,
    program: str,
    activities: Iterable[str],
    benefits: Iterable[Benefit],
    cost: Amount | CostBreakdown,
    impact: Iterable[KpiImpact] = (),
    behaviour: pl.DataFrame | None = None,
    intangibles: Iterable[str] = (),
    months_of_benefit: Amount = 12,
    confidence: float = 0.95,
) -> PhillipsEvaluation:
    """The five Phillips levels of ``program``.

    Parameters
    ----------
    con
        The warehouse, with ``survey_response`` and ``learning_record``.
    program
        The program as named in ``surveys.csv`` (levels 1 and 3).
    activities
        The program's activity or course ids (level 2): records of them, or of their lessons, count.
    benefits
        The monetised benefits (:func:`training_roi.value.monetise.monetise`).
    cost
        The fully loaded cost, or its :class:`CostBreakdown`.
    impact
        The isolated KPI effects (level 4), as the caller judged them.
    behaviour
        CRM behaviour KPIs per unit before and after training: columns ``kpi``, ``unit_id``,
        ``before``, ``after`` (level 3).
    intangibles
        Benefits the study declares but does not monetise (level 5, listed).
    months_of_benefit
        The period the benefits cover, for the payback.
    confidence
        Level of the paired t intervals.

    Raises
    ------
    ValueError
        No activity, a confidence outside (0, 1), a malformed behaviour frame, or a cost ≤ 0.
    """
    acts = tuple(sorted(set(activities)))
    if not acts:
        raise ValueError("activities must name at least one of the program's activities or courses")
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be between 0 and 1, got {confidence}")
    require_tables(con, "survey_response", "learning_record")
    gained = tuple(benefits)
    total = cost.total if isinstance(cost, CostBreakdown) else cost
    return PhillipsEvaluation(
        program=program,
        activities=acts,
        reaction=_survey(con, program, "reaction"),
        learning=_learning(con, acts, confidence),
        application=ApplicationLevel(
            _survey(con, program, "application"),
            () if behaviour is None else _behaviour(behaviour, confidence),
            0 if behaviour is None else behaviour.height,
        ),
        impact=ImpactLevel(tuple(impact)),
        roi=ROILevel(gained, roi(sum((b.amount for b in gained), Decimal(0)), total,
                                 months_of_benefit=months_of_benefit), tuple(intangibles)),
    )
