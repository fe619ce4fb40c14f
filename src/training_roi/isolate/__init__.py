"""Isolate: the program's effect, separated from everything else that changed.

Every estimator works on panels alone (:class:`UnitPanel`, the windows' :class:`GroupWindows`),
never on the warehouse, as scikit-learn estimators work on arrays: a data scientist can bring a
table of their own (``UnitPanel.from_data`` takes a pandas or Polars DataFrame or an Arrow table
with columns of any names). Each returns an :class:`Effect` or raises :class:`NotApplicable`;
the registry :data:`ESTIMATORS` lists them, and :func:`compare_methods` runs them side by side
and recommends one (never one of the naive comparisons, which it lists labelled biased).

**Periods.** A unit panel has a grain — day, week, month (the default), quarter, year, or
integer-numbered periods — and every estimator counts time in its periods through
:meth:`UnitPanel.period_index`; settings named ``post_months``, ``pre_months``, ``leads`` and
``lags`` count periods of the grain.

**Where training sits.** One convention for every estimator: the period that contains a unit's
``treated_at`` is event time 0 and counts as *after* training; event time −1, the last period
before it, is the last of the baseline. Two-way fixed effects, the event study, the staggered
estimator, the matched comparisons (PSM, IPW, CEM), the trend line, the participant estimate's
observed change, dose-response and the naive comparisons all follow it.

**Missing outcomes.** A unit-period whose outcome (or denominator) is null is unobserved: every
estimator leaves it out of its sums and regressions, and its result warns how many were left out.

Beside them, functions on plain arrays check what an estimate rests on: what an event study's
pre-period can tell about parallel trends (:func:`pretrend_check`), how far parallel trends may
fail before the conclusion changes (:func:`honest_sensitivity`), and inference that keeps its
level with few clusters (:func:`cluster_inference`).

For whom the program works: :func:`estimate_subgroups` (:func:`subgroup_effects` on arrays) gives
the effect on the trained and on the untrained of every subgroup, with simultaneous intervals. Which
lessons matter: :func:`lesson_map`, each lesson against the average lesson at a false-discovery rate.
"""

from training_roi.isolate.compare import METHODS, Comparison, MethodResult, compare_methods
from training_roi.isolate.design import (
    estimate_icc,
    minimum_detectable_lift,
    power_for_lift,
    power_warning,
    randomise,
    write_assignment,
)
from training_roi.isolate.did import Resampling, did_rate, did_ratio, naive_rates
from training_roi.isolate.dose import SELF_SELECTION, dose_changes, estimate_dose_response
from training_roi.isolate.drdid import DiDFit, dr_did, estimate_drdid, ipw_did, multiplier_draws, reg_did
from training_roi.isolate.effect import (
    ESTIMATORS,
    Effect,
    Estimator,
    EstimatorSettings,
    NotApplicable,
    cluster_weights,
    effect_from_draws,
    effect_from_normal,
    estimator,
    registered,
)
from training_roi.isolate.estimates import estimate_participant
from training_roi.isolate.event_study import estimate_event_study, estimate_twfe_did
from training_roi.isolate.heterogeneity import SubgroupEffects, estimate_subgroups, subgroup_effects
from training_roi.isolate.honest import (
    Sensitivity,
    SensitivityRow,
    breakdown_value,
    honest_identified_set,
    honest_interval,
    honest_sensitivity,
    roi_breakdown,
)
from training_roi.isolate.lesson_map import LessonMap, lesson_map
from training_roi.isolate.matching import estimate_cem, estimate_ipw, estimate_psm, unit_features
from training_roi.isolate.naive import naive_windows
from training_roi.isolate.pretrends import (
    PreTrendCheck,
    detectable_slope,
    equivalence_bound,
    equivalence_test,
    pretest_power,
    pretrend_check,
)
from training_roi.isolate.staggered import estimate_staggered
from training_roi.isolate.staggered_dr import estimate_staggered_dr
from training_roi.isolate.trend import estimate_trend
from training_roi.isolate.wild import (
    ClusterTest,
    InferenceChoice,
    choose_inference,
    cluster_inference,
    linearized_inference,
    multiplier_weights,
    wild_cluster_bootstrap,
)
from training_roi.measure.panels import GroupWindows, UnitPanel

__all__ = [
    "ESTIMATORS",
    "METHODS",
    "SELF_SELECTION",
    "ClusterTest",
    "Comparison",
    "DiDFit",
    "Effect",
    "Estimator",
    "EstimatorSettings",
    "GroupWindows",
    "InferenceChoice",
    "LessonMap",
    "MethodResult",
    "NotApplicable",
    "PreTrendCheck",
    "Resampling",
    "Sensitivity",
    "SensitivityRow",
    "SubgroupEffects",
    "UnitPanel",
    "breakdown_value",
    "choose_inference",
    "cluster_inference",
    "cluster_weights",
    "compare_methods",
    "detectable_slope",
    "did_rate",
    "did_ratio",
    "dose_changes",
    "dr_did",
    "effect_from_draws",
    "effect_from_normal",
    "equivalence_bound",
    "equivalence_test",
    "estimate_cem",
    "estimate_dose_response",
    "estimate_drdid",
    "estimate_event_study",
    "estimate_icc",
    "estimate_ipw",
    "estimate_participant",
    "estimate_psm",
    "estimate_staggered",
    "estimate_staggered_dr",
    "estimate_subgroups",
    "estimate_trend",
    "estimate_twfe_did",
    "estimator",
    "honest_identified_set",
    "honest_interval",
    "honest_sensitivity",
    "ipw_did",
    "lesson_map",
    "linearized_inference",
    "minimum_detectable_lift",
    "multiplier_draws",
    "multiplier_weights",
    "naive_rates",
    "naive_windows",
    "power_for_lift",
    "power_warning",
    "pretest_power",
    "pretrend_check",
    "randomise",
    "reg_did",
    "registered",
    "roi_breakdown",
    "subgroup_effects",
    "unit_features",
    "wild_cluster_bootstrap",
    "write_assignment",
]
