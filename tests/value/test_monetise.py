"""Monetisation rules: every amount worked out by hand, the declarations' rules, exactness."""

from __future__ import annotations

import doctest
import importlib
from decimal import Decimal

import pytest
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from training_roi.isolate.did import Effect
from training_roi.value.monetise import Change, MonetisationRule, monetise, parse_rules

monetise_module = importlib.import_module("training_roi.value.monetise")


def one(**declaration: object) -> MonetisationRule:
    [rule] = parse_rules([declaration])
    return rule


def effect(estimate: float, low: float, high: float) -> Effect:
    return Effect(method="did", estimate=estimate, ci_low=low, ci_high=high, p_value=0.01, std_error=0.1,
                  confidence=0.95, replicates=0, prob_positive=0.0, baseline=2.0)


def test_doctests():
    assert doctest.testmod(monetise_module).failed == 0


def test_revenue_times_margin():
    b = one(name="sales", rule="revenue_margin", revenue=120_000, margin=0.35).benefit()
    assert b.amount == Decimal("42000")  # 120,000 × 0.35
    assert b.formula == "$120,000 incremental revenue × 35.0% margin = $42,000"
    assert b.source == "assumption" and b.effect is None and b.interval is None
    assert b.inputs == {"revenue": Decimal(120_000), "margin": Decimal("0.35")}


def test_errors_avoided_from_an_isolated_effect_with_its_interval():
    rule = one(name="fewer errors", rule="error_cost", effect="errors_per_rep_month", scale=-480,
               cost_per_error=150)
    b = rule.benefit(effect(-0.5, -0.8, -0.2))
    # −0.5 errors per rep-month × −(40 reps × 12 months) = 240 errors avoided; × $150 = $36,000.
    assert b.amount == Decimal(36_000)
    assert b.interval == (Decimal(14_400), Decimal(57_600))  # 0.2 × 480 × 150 and 0.8 × 480 × 150
    assert b.source == "isolated effect" and b.effect == "errors_per_rep_month"
    assert b.formula == ("effect errors_per_rep_month -0.5 × scale -480 = 240 errors avoided × $150 per error "
                         "= $36,000")
    assert b.inputs["errors_avoided"] == 240 and b.inputs["effect"] == Decimal("-0.5")


def test_compliance_penalties_expected_and_certain():
    b = one(name="fines", rule="compliance_penalty", incidents_avoided=2, probability=0.25, penalty=50_000).benefit()
    assert b.amount == Decimal(25_000)  # 2 × 0.25 × 50,000
    assert "2 incidents avoided × 25.0% chance of a penalty × $50,000 penalty" in b.formula
    certain = one(name="fines", rule="compliance_penalty", incidents_avoided=3, penalty="10000.50").benefit()
    assert certain.amount == Decimal("30001.50")  # probability defaults to 1


def test_turnover_with_a_declared_interval():
    b = one(name="retention", rule="turnover", leavers_avoided=3, replacement_cost=40_000, interval=[1, 5]).benefit()
    assert b.amount == Decimal(120_000)
    assert b.interval == (Decimal(40_000), Decimal(200_000))


def test_time_saved_per_person_per_period():
    b = one(name="admin time", rule="time_saved", hours_saved=1.5, people=40, periods=12, period="month",
            hourly_rate=55.5).benefit()
    assert b.amount == Decimal(39_960)  # 1.5 h × 40 people = 60 h a month; × 12 = 720 h; × $55.50
    assert b.formula == ("1.5 hours saved per person per month × 40 people × 12 months × $55.50 per hour "
                         "= $39,960")


def test_amounts_are_exact_decimals_not_float_products():
    b = one(name="x", rule="revenue_margin", revenue=0.2, margin=0.1).benefit()
    assert 0.2 * 0.1 != 0.02  # what float arithmetic would have given
    assert b.amount == Decimal("0.02")


def test_a_negative_effect_scale_gives_a_negative_benefit_and_an_ordered_interval():
    rule = one(name="more errors", rule="error_cost", effect="errors", scale=-10, cost_per_error=100)
    b = rule.benefit(Change(Decimal("0.3"), (Decimal("0.1"), Decimal("0.5"))))
    assert b.amount == Decimal(-300)
    assert b.interval == (Decimal(-500), Decimal(-100))


@pytest.mark.parametrize(("declaration", "message"), [
    ({"rule": "error_cost", "cost_per_error": 1}, "got neither"),
    ({"rule": "error_cost", "errors_avoided": 1, "effect": "e", "cost_per_error": 1}, "got both"),
    ({"rule": "error_cost", "errors_avoided": 1, "cost_per_error": 1, "scale": 3}, "scale converts"),
    ({"rule": "error_cost", "errors_avoided": True, "cost_per_error": 1}, "not true/false"),
    ({"rule": "error_cost", "errors_avoided": "many", "cost_per_error": 1}, "must be a number"),
    ({"rule": "error_cost", "errors_avoided": 1, "cost_per_error": 1, "costs": 2}, "Extra inputs"),
    ({"rule": "error_cost", "errors_avoided": 1, "cost_per_error": -1}, "greater than or equal to 0"),
    ({"rule": "revenue_margin", "revenue": 1, "margin": 1.5}, "less than or equal to 1"),
    ({"rule": "turnover", "leavers_avoided": 9, "replacement_cost": 1, "interval": [1, 5]}, "must contain"),
    ({"rule": "turnover", "effect": "e", "replacement_cost": 1, "interval": [1, 5]}, "its own interval"),
    ({"rule": "time_saved", "hours_saved": 1, "people": 1, "periods": 1, "period": "fortnight",
      "hourly_rate": 1}, "period"),
    ({"rule": "bonus", "amount": 1}, "does not match any of the expected tags"),
    ({"rule": "turnover", "name": 5, "leavers_avoided": 1, "replacement_cost": 1}, "valid string"),  # strict
])
def test_declarations_are_refused_with_the_reason(declaration, message):
    with pytest.raises(ValidationError, match=message):
        parse_rules([{"name": "x", **declaration}])


def test_monetise_takes_each_effect_by_name_and_names_what_is_missing():
    rules = parse_rules([
        {"name": "sales", "rule": "revenue_margin", "effect": "revenue", "margin": 0.4},
        {"name": "retention", "rule": "turnover", "leavers_avoided": 2, "replacement_cost": 1000},
    ])
    benefits = monetise(rules, effects={"revenue": Change(Decimal(1000))})
    assert [b.amount for b in benefits] == [Decimal(400), Decimal(2000)]
    assert [b.source for b in benefits] == ["isolated effect", "assumption"]
    with pytest.raises(ValueError, match=r"names the effect 'revenue', which was not measured \(measured: none\)"):
        monetise(rules)
    with pytest.raises(ValueError, match="two monetisation rules are named 'sales'"):
        monetise([rules[0], rules[0]], effects={"revenue": Change(Decimal(1))})
    with pytest.raises(ValueError, match="declares leavers_avoided"):
        rules[1].benefit(Change(Decimal(1)))


def test_a_study_can_hold_the_list_and_it_round_trips_through_json():
    class Holder(BaseModel):  # stands in for Study, which gets this exact field
        model_config = ConfigDict(extra="forbid", frozen=True)
        monetisation: list[MonetisationRule] = Field(default_factory=list)

    text = """
    monetisation:
      - {name: sales, rule: revenue_margin, effect: revenue, scale: 12, margin: 0.35}
      - {name: admin time, rule: time_saved, hours_saved: 2, people: 10, periods: 4, period: quarter,
         hourly_rate: 60}
    """
    held = Holder.model_validate(yaml.safe_load(text))
    assert [type(r).__name__ for r in held.monetisation] == ["RevenueMargin", "TimeSaved"]
    again = Holder.model_validate_json(held.model_dump_json())
    assert again == held
    assert again.monetisation[1].benefit().amount == Decimal(4800)  # 2 × 10 × 4 × 60
