"""The attribution stage's settings: which touches revenue flows through, and how it is shared.

A study file carries these under ``attribution:``; the stage owns their definition (and their
validation), so the study composes them and the stage reads nothing else of the study.
"""

from __future__ import annotations

from typing import Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, model_validator

from training_roi.attribute.split import check_role_weights

__all__ = ["MODELS", "Attribution", "AttributionModel"]


class _Strict(BaseModel):
    # Frozen so settings cannot drift after the study's hash was taken; extra="forbid" so a typo
    # in a key is an error rather than a silently ignored assumption.
    model_config = ConfigDict(extra="forbid", frozen=True)


AttributionModel = Literal["first_touch", "last_touch", "linear", "time_decay", "position_based", "markov",
                           "shapley"]
"""Attribution models a study can name (:mod:`training_roi.attribute`)."""

MODELS: tuple[AttributionModel, ...] = get_args(AttributionModel)
"""Every model, in the order the comparison lists them."""


class Attribution(_Strict):
    """Which training touches the revenue flows through: the supporting table beside the lift."""

    enabled: bool = True
    model: AttributionModel = "linear"
    """The model of the attribution table; every model appears in the comparison."""
    lookback_days: int | None = Field(default=None, gt=0)
    """How long before a deal's close a touch counts; None = the primary attribution window."""
    half_life_days: float = Field(default=30.0, gt=0)
    """Time decay: a touch this many days before the close counts half as much as one on the day."""
    first_share: float = Field(default=0.4, ge=0, le=1)
    last_share: float = Field(default=0.4, ge=0, le=1)
    markov_order: int = Field(default=1, ge=1, le=4)
    learner_split: Literal["equal", "recency", "role"] = "equal"
    """How a deal's training credit is shared when several learners touched it."""
    role_weights: dict[str, float] = Field(default_factory=dict)
    """With learner_split: role, the weight of each role or title (a positive number); every role held
    by the learners of a deal that several trained for needs one."""
    crm_touches: bool = True
    """Campaign responses and deal activities compete with training for credit, when the CRM has them."""
    all_programs: bool = True
    """Every LMS program is a touch (the roll-up compares them); False = only the study's program."""

    @model_validator(mode="after")
    def _positions(self) -> Attribution:
        if self.first_share + self.last_share > 1:
            raise ValueError(f"first_share + last_share must be at most 1, got {self.first_share + self.last_share}")
        # Refused here, whatever the data: a split that needs weights cannot wait for a deal with several learners.
        if self.learner_split == "role" or self.role_weights:
            check_role_weights(self.role_weights, rule="learner_split: role")
        return self
