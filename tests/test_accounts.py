"""Customer education: accounts as units, several learners per account, figures worked by hand."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest
import yaml

from tests.builders import write
from training_roi.evaluation import evaluate
from training_roi.ingest.folder import ingest_folder
from training_roi.linking import link
from training_roi.study import Study, StudyError, load_study

R1, R2 = "005000000000001AAA", "005000000000002AAA"
A1, A2, A3, A4 = (f"00100000000000{i}AAA" for i in range(1, 5))
COURSE = "https://academy.example.com/course/admin-101"

OPPS = [  # account, created, close date, won, amount
    (A1, "2025-01-15", "2025-02-01", True, 1000), (A1, "2025-02-01", "2025-02-10", False, 1000),
    (A1, "2025-03-15", "2025-04-01", True, 2000), (A1, "2025-04-01", "2025-04-20", True, 2000),
    (A2, "2025-02-01", "2025-02-20", False, 500),
    (A2, "2025-03-20", "2025-04-10", True, 1000), (A2, "2025-03-25", "2025-04-05", False, 1000),
    (A3, "2025-01-20", "2025-02-05", True, 800), (A3, "2025-02-10", "2025-02-25", False, 800),
    (A3, "2025-03-10", "2025-03-30", True, 800), (A3, "2025-03-20", "2025-04-15", False, 800),
    (A4, "2025-01-10", "2025-01-30", False, 600),
    (A4, "2025-03-05", "2025-03-25", False, 600), (A4, "2025-03-12", "2025-04-02", True, 600),
]


@pytest.fixture
def org(tmp_path: Path, con):
    write(tmp_path / "crm" / "User.csv", f"Id,Email\n{R1},r1@vendor.com\n{R2},r2@vendor.com\n")
    write(tmp_path / "crm" / "Account.csv", f"Id,Name\n{A1},Acme\n{A2},Globex\n{A3},Initech\n{A4},Umbrella\n")
    write(tmp_path / "crm" / "Contact.csv", "Id,AccountId,Email\n"
          f"003000000000001AAA,{A1},c1@acme.com\n003000000000002AAA,{A1},c2@acme.com\n"
          f"003000000000003AAA,{A2},c3@globex.com\n003000000000004AAA,{A3},c4@initech.com\n")
    rows = ["Id,OwnerId,AccountId,StageName,Amount,CloseDate,CreatedDate,IsClosed,IsWon,IsDeleted"]
    for i, (account, created, close, won, amount) in enumerate(OPPS, 1):
        stage = "Closed Won" if won else "Closed Lost"
        owner = R1 if i % 2 else R2
        rows.append(f"006{i:012d}AAA,{owner},{account},{stage},{amount},{close},{created}T10:00:00.000Z,"
                    f"true,{'true' if won else 'false'},false")
    write(tmp_path / "crm" / "Opportunity.csv", "\n".join(rows) + "\n")
    write(tmp_path / "lms" / "completions.csv",
          "learner_id,learner_email,course_id,course_title,program,enrolled_at,completed_at,score,passed,minutes\n"
          f"L1,c1@acme.com,{COURSE},Admin 101,Customer Academy,2025-02-01,2025-03-01T09:00:00Z,90,true,60\n"
          f"L2,c2@acme.com,{COURSE},Admin 101,Customer Academy,2025-02-01,2025-03-10T09:00:00Z,80,true,60\n"
          f"L3,c3@globex.com,{COURSE},Admin 101,Customer Academy,2025-02-01,2025-03-01T15:00:00Z,70,true,60\n")
    write(tmp_path / "costs.csv", "program,category,amount,date,note\n"
          "Customer Academy,development,1000,2025-01-01,course build\n")
    ingest_folder(tmp_path, con)
    link(con)
    return con


def _study(**extra: object) -> Study:
    return Study.model_validate({
        "name": "Customer Academy", "program": {"activities": [COURSE]},
        "population": {"unit": "account"}, "baseline": {"months": 2},
        "windows": {"primary_days": 60, "sensitivity_days": [60]},
        "isolation": {"bootstrap_replicates": 200}, **extra,
    })


def test_accounts_are_the_units_and_their_learners_count_once(org):
    ev = evaluate(org, _study())
    p = ev.primary
    # Acme (two learners, anchored at the first completion) and Globex are trained; Initech has a
    # contact who never completed, and Umbrella none: both are the comparison.
    assert (p.trained_units, p.comparison_units) == (2, 2)
    rows = {r.learner: r for r in p.learners}
    assert set(rows) == {"Acme", "Globex"}
    assert (rows["Acme"].learners, rows["Globex"].learners) == (2, 1)
    assert rows["Acme"].completion_date == "2025-03-01"
    # Win rate by hand: trained 1/3 → 3/4, comparison 1/3 → 2/4; DiD = (3/4 − 1/3) − (2/4 − 1/3) = 1/4.
    assert p.did is not None and p.did.estimate == pytest.approx(0.25)
    assert p.did.details["trained_baseline"] == pytest.approx(1 / 3)
    assert p.did.details["comparison_post"] == pytest.approx(0.5)
    # The post windows' deals of the trained accounts: Acme 2,000 + 2,000, Globex 1,000 + 1,000.
    assert p.pipeline_value == Decimal("6000.00") and p.attributed_revenue == Decimal("5000.00")
    assert rows["Acme"].pipeline_value == Decimal("4000.00")
    # Customers' learning time is not the company's cost unless the study prices it.
    assert ev.costs.total == Decimal("1000")
    priced = evaluate(org, _study(costs={"participant_time": {"hourly_rate": 50}}))
    assert priced.costs.total == Decimal("1150.00")  # three learners × 1 hour × $50 on top
    kpi = {k.kpi: k for k in p.kpis}
    assert kpi["revenue_per_rep"].label == "revenue won per account-month"


def test_role_filters_do_not_choose_accounts(tmp_path: Path):
    path = tmp_path / "study.yaml"
    path.write_text(yaml.safe_dump({"name": "x", "program": {"activities": [COURSE]},
                                    "population": {"unit": "account", "roles": ["00E1"]}}), encoding="utf-8")
    with pytest.raises(StudyError, match=r"population: .*with unit: account choose accounts by accounts"):
        load_study(path)

