"""Monetisation rules: how a measured change of the business becomes money (Phillips level 5).

Phillips' second step of the ROI calculation puts a dollar value on each level-4 outcome, with
every assumption written down so that finance can follow it. A study declares its rules under
``monetisation:``; each rule multiplies one *change* (the thing training moved) by the values the
organisation already knows:

* ``revenue_margin``: incremental revenue × gross margin;
* ``error_cost``: errors avoided × cost per error;
* ``compliance_penalty``: incidents avoided × probability of a penalty × penalty (expected penalty);
* ``turnover``: leavers avoided × replacement cost;
* ``time_saved``: hours saved per person per period × people × periods × loaded hourly rate.

The change is either a value the user assumes (``errors_avoided: 240``) or the name of an
isolated KPI effect (``effect: errors_per_rep_month``) times ``scale``, the number that turns one
unit of that effect into the rule's quantity (e.g. −480 = −(40 reps × 12 months) for a *drop* in
errors per rep-month). Amounts are exact ``Decimal`` products; a float from YAML or from an
estimator enters through its shortest representation, so ``0.35`` is exactly 0.35.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from decimal import Decimal, Inexact, InvalidOperation, localcontext
from typing import Annotated, Any, ClassVar, Literal, Protocol

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, TypeAdapter, model_validator

from training_roi.value.roi import PRECISION

__all__ = ["Benefit", "Change", "CompliancePenalty", "ErrorCost", "MonetisationRule", "RevenueMargin", "TimeSaved",
           "Turnover", "monetise", "parse_rules"]

Source = Literal["isolated effect", "assumption"]


def _decimal_in(value: Any) -> Any:
    """A number from YAML or Python as an exact ``Decimal`` (a float through its shortest repr)."""
    if isinstance(value, bool):
        raise ValueError("must be a number, not true/false")
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"must be a finite number, got {value}")
        return Decimal(repr(value))
    if isinstance(value, int):
        return Decimal(value)
    if isinstance(value, str):
        try:
            value = Decimal(value.strip())
        except InvalidOperation:
            raise ValueError(f"must be a number, got {value!r}") from None
    if isinstance(value, Decimal) and not value.is_finite():
        raise ValueError(f"must be a finite number, got {value}")
    return value


Number = Annotated[Decimal, BeforeValidator(_decimal_in)]
"""A decimal number in a declaration: written as a YAML number or a decimal string."""


@contextmanager
def _exact() -> Iterator[None]:
    """Products of a few decimals are exact at this precision: trap rather than round silently."""
    with localcontext() as ctx:
        ctx.prec = 10 * PRECISION
        ctx.traps[Inexact] = True
        yield


def _money(value: Decimal) -> str:
    sign = "-" if value < 0 else ""
    whole = value == value.to_integral_value()
    return f"{sign}${abs(value):,.{0 if whole else 2}f}"


def _num(value: Decimal) -> str:
    return f"{value.normalize():,f}"


def _pct(value: Decimal) -> str:
    return f"{value * 100:.1f}%"


class EffectLike(Protocol):
    """What the isolation stage returns for a KPI (an ``isolate.Effect`` fits)."""

    @property
    def estimate(self) -> float: ...
    @property
    def ci_low(self) -> float: ...
    @property
    def ci_high(self) -> float: ...
    @property
    def method(self) -> str: ...


@dataclass(frozen=True)
class Change:
    """An isolated change of a KPI: the estimate, its interval, and the method behind it."""

    value: Decimal
    interval: tuple[Decimal, Decimal] | None = None
    method: str = ""

    @classmethod
    def of(cls, effect: EffectLike) -> Change:
        """The change an estimator measured, its floats taken through their shortest repr."""
        if not math.isfinite(effect.estimate):
            raise ValueError(f"the {effect.method} estimate is {effect.estimate}: nothing to monetise")
        bounds = (effect.ci_low, effect.ci_high)
        finite = all(math.isfinite(b) for b in bounds)
        interval = (Decimal(repr(bounds[0])), Decimal(repr(bounds[1]))) if finite else None
        return cls(Decimal(repr(effect.estimate)), interval, effect.method)


@dataclass(frozen=True)
class Benefit:
    """One monetised benefit, traceable to its formula and inputs.

    ``amount`` is exact; ``formula`` shows it with its numbers filled in; ``inputs`` holds every
    number it depends on; ``source`` says whether the change was measured (``effect`` names the
    isolated effect) or assumed; ``interval`` is the amount at the ends of the change's interval.
    """

    name: str
    rule: str
    amount: Decimal
    formula: str
    inputs: dict[str, Decimal]
    source: Source
    effect: str | None = None
    interval: tuple[Decimal, Decimal] | None = None

    def asdict(self) -> dict[str, Any]:
        """A JSON-ready dictionary; numbers as exact decimal strings."""
        return {
            "name": self.name, "rule": self.rule, "amount": str(self.amount), "formula": self.formula,
            "inputs": {k: str(v) for k, v in self.inputs.items()}, "source": self.source, "effect": self.effect,
            "interval": None if self.interval is None else [str(b) for b in self.interval],
        }

    def __str__(self) -> str:
        around = "" if self.interval is None else f" [{_money(self.interval[0])}, {_money(self.interval[1])}]"
        return f"{self.name}: {self.formula}{around} ({self.source})"


class _Rule(BaseModel):
    # Strict and closed: a typo in a key or a quoted flag is an error, never a silent assumption.
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    change_field: ClassVar[str]
    change_label: ClassVar[str]
    change_is_money: ClassVar[bool] = False

    name: str = Field(min_length=1, description="what the benefit is called in the report")
    rule: str
    effect: str | None = Field(default=None, min_length=1, description="name of the isolated KPI effect")
    scale: Number = Field(default=Decimal(1), description="rule quantity per unit of the effect")
    interval: list[Number] | None = Field(
        default=None, min_length=2, max_length=2, description="[low, high] of a declared change"
    )

    def _factors(self) -> list[tuple[str, Decimal, str]]:
        """The numbers the change is multiplied by: (input name, value, how the formula shows it)."""
        raise NotImplementedError

    def _label(self) -> str:
        return self.change_label

    @model_validator(mode="after")
    def _one_source(self) -> _Rule:
        declared = getattr(self, self.change_field)
        if (declared is None) == (self.effect is None):
            which = "both" if declared is not None else "neither"
            raise ValueError(f"give either {self.change_field} (a value you assume) or effect (the name of an "
                             f"isolated KPI effect), got {which}")
        if self.effect is None and self.scale != 1:
            raise ValueError(f"scale converts an isolated effect into {self.change_label}; "
                             f"it has no meaning with a declared {self.change_field}")
        if self.interval is not None:
            if self.effect is not None:
                raise ValueError("interval: an isolated effect brings its own interval; give it for a declared "
                                 f"{self.change_field} only")
            low, high = self.interval
            if not low <= declared <= high:
                raise ValueError(f"interval [{low}, {high}] must contain {self.change_field} {declared}")
        return self

    def _show(self, value: Decimal) -> str:
        return _money(value) if self.change_is_money else _num(value)

    def benefit(self, change: Change | EffectLike | None = None) -> Benefit:
        """The money this rule gives, from its declared change or from the measured ``change``.

        Raises
        ------
        ValueError
            When the rule names an effect and none is given, or declares its change and one is.
        """
        prefix = ""
        measured_value: Decimal | None = None
        source: Source
        if self.effect is None:
            if change is not None:
                raise ValueError(f"monetisation {self.name!r} declares {self.change_field}; "
                                 "a measured change cannot replace it")
            value: Decimal = getattr(self, self.change_field)
            bounds = None if self.interval is None else (self.interval[0], self.interval[1])
            source = "assumption"
        else:
            if change is None:
                raise ValueError(f"monetisation {self.name!r} needs the isolated effect {self.effect!r}, "
                                 "which was not given")
            measured = change if isinstance(change, Change) else Change.of(change)
            measured_value = measured.value
            with _exact():
                value = measured.value * self.scale
                bounds = None if measured.interval is None else (measured.interval[0] * self.scale,
                                                                 measured.interval[1] * self.scale)
            prefix = f"effect {self.effect} {_num(measured.value)} × scale {_num(self.scale)} = "
            source = "isolated effect"
        factors = self._factors()
        with _exact():
            per_unit = Decimal(1)
            for _, factor, _ in factors:
                per_unit *= factor
            amount = value * per_unit
            interval = None if bounds is None else (bounds[0] * per_unit, bounds[1] * per_unit)
        if interval is not None and interval[0] > interval[1]:
            interval = (interval[1], interval[0])
        terms = " × ".join([f"{self._show(value)} {self._label()}", *(text for _, _, text in factors)])
        inputs = {self.change_field: value, **{key: factor for key, factor, _ in factors}}
        if measured_value is not None:
            inputs = {"effect": measured_value, "scale": self.scale, **inputs}
        return Benefit(self.name, self.rule, amount, f"{prefix}{terms} = {_money(amount)}", inputs, source,
                       self.effect, interval)


class RevenueMargin(_Rule):
    """Incremental revenue × gross margin: the profit a sales program added."""

    change_field: ClassVar[str] = "revenue"
    change_label: ClassVar[str] = "incremental revenue"
    change_is_money: ClassVar[bool] = True

    rule: Literal["revenue_margin"]
    revenue: Number | None = None
    margin: Number = Field(gt=0, le=1, description="gross margin, a fraction")

    def _factors(self) -> list[tuple[str, Decimal, str]]:
        return [("margin", self.margin, f"{_pct(self.margin)} margin")]


class ErrorCost(_Rule):
    """Errors avoided × cost of one error (labour to fix it plus its downstream cost)."""

    change_field: ClassVar[str] = "errors_avoided"
    change_label: ClassVar[str] = "errors avoided"

    rule: Literal["error_cost"]
    errors_avoided: Number | None = None
    cost_per_error: Number = Field(ge=0)

    def _factors(self) -> list[tuple[str, Decimal, str]]:
        return [("cost_per_error", self.cost_per_error, f"{_money(self.cost_per_error)} per error")]


class CompliancePenalty(_Rule):
    """Incidents avoided × expected penalty (probability an incident is penalised × penalty).

    For one risk whose chance the program lowers, declare ``incidents_avoided: 1`` and the fall in
    its chance as ``probability``.
    """

    change_field: ClassVar[str] = "incidents_avoided"
    change_label: ClassVar[str] = "incidents avoided"

    rule: Literal["compliance_penalty"]
    incidents_avoided: Number | None = None
    penalty: Number = Field(ge=0, description="fine, legal and remediation cost of one penalised incident")
    probability: Number = Field(default=Decimal(1), gt=0, le=1, description="chance an incident is penalised")

    def _factors(self) -> list[tuple[str, Decimal, str]]:
        return [("probability", self.probability, f"{_pct(self.probability)} chance of a penalty"),
                ("penalty", self.penalty, f"{_money(self.penalty)} penalty")]


class Turnover(_Rule):
    """Leavers avoided × the cost of replacing one (recruiting, onboarding, lost productivity)."""

    change_field: ClassVar[str] = "leavers_avoided"
    change_label: ClassVar[str] = "leavers avoided"

    rule: Literal["turnover"]
    leavers_avoided: Number | None = None
    replacement_cost: Number = Field(ge=0)

    def _factors(self) -> list[tuple[str, Decimal, str]]:
        return [("replacement_cost", self.replacement_cost, f"{_money(self.replacement_cost)} replacement cost")]


class TimeSaved(_Rule):
    """Hours saved per person per period × people × periods × loaded hourly rate."""

    change_field: ClassVar[str] = "hours_saved"
    change_label: ClassVar[str] = "hours saved per person"

    rule: Literal["time_saved"]
    hours_saved: Number | None = None
    people: Number = Field(ge=0)
    periods: Number = Field(gt=0, description="how many periods the saving lasts")
    period: Literal["week", "month", "quarter", "year"] = "month"
    hourly_rate: Number = Field(ge=0, description="loaded hourly cost of a person's time")

    def _label(self) -> str:
        return f"{self.change_label} per {self.period}"

    def _factors(self) -> list[tuple[str, Decimal, str]]:
        return [("people", self.people, f"{_num(self.people)} people"),
                ("periods", self.periods, f"{_num(self.periods)} {self.period}s"),
                ("hourly_rate", self.hourly_rate, f"{_money(self.hourly_rate)} per hour")]


MonetisationRule = Annotated[
    RevenueMargin | ErrorCost | CompliancePenalty | Turnover | TimeSaved, Field(discriminator="rule")
]
"""One declaration under a study's ``monetisation:`` list, told apart by its ``rule``."""

_RULES: TypeAdapter[list[MonetisationRule]] = TypeAdapter(list[MonetisationRule])


def parse_rules(items: Iterable[Mapping[str, Any]]) -> list[MonetisationRule]:
    """Validate a ``monetisation:`` list as a study file holds it.

    Raises
    ------
    pydantic.ValidationError
        Naming the item, the rule and the field at fault.

    Examples
    --------
    >>> [r] = parse_rules([{"name": "fewer errors", "rule": "error_cost", "errors_avoided": 240,
    ...                     "cost_per_error": 150}])
    >>> r.benefit().formula
    '240 errors avoided × $150 per error = $36,000'
    """
    return _RULES.validate_python([dict(item) for item in items])


def monetise(
    rules: Iterable[MonetisationRule], *, effects: Mapping[str, Change | EffectLike] | None = None
) -> tuple[Benefit, ...]:
    """The benefit of each rule, the measured ones from ``effects`` (isolated KPI effects by name).

    Raises
    ------
    ValueError
        When two rules share a name, or a rule names an effect that ``effects`` does not hold.
    """
    given = dict(effects or {})
    out: list[Benefit] = []
    for r in rules:
        if any(b.name == r.name for b in out):
            raise ValueError(f"two monetisation rules are named {r.name!r}: each benefit needs its own name")
        if r.effect is not None and r.effect not in given:
            known = ", ".join(sorted(given)) or "none"
            raise ValueError(f"monetisation {r.name!r} names the effect {r.effect!r}, which was not measured "
                             f"(measured: {known})")
        out.append(r.benefit(given[r.effect] if r.effect is not None else None))
    return tuple(out)
