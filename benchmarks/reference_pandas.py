"""A competent pandas script of the seed's model, from the raw files: the speed goals' first reference.

    python benchmarks/reference_pandas.py DATA_FOLDER [--out result.json]

It reads only what the model needs (crm/User.csv, crm/Opportunity.csv, the xAPI statements
lms/**/*.jsonl, lms/learners.csv, the completion report
lms/completions.csv, costs.csv), links learners to reps (a statement's mbox email, or
its account name through learners.csv, to the CRM user with that email), takes each rep's first
completion of the program's course (completed or passed, not voided) as its training date, draws
the comparison reps' pseudo dates, sums every rep's deals in its baseline and post windows (by
creation day, in UTC) and hands the sums to :mod:`refmodel` for the difference-in-differences,
the bootstrap, the incremental revenue and the ROI. Nothing is validated or quarantined: a row
whose date or amount does not parse is dropped or counts as no amount.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

import refmodel as m


def _statements(folder: Path, course: str) -> pd.DataFrame:
    """The course's completions and every voiding, one row per statement (other lines are skipped unparsed)."""
    rows = []
    for path in sorted(folder.glob("lms/**/*.jsonl")):
        with path.open(encoding="utf-8") as lines:
            for line in lines:
                if course not in line and "voided" not in line:
                    continue
                try:
                    s = json.loads(line)
                except json.JSONDecodeError:
                    continue  # a malformed line (a truncated export) holds no statement
                actor = s.get("actor") or {}
                rows.append((s.get("id"), (s.get("verb") or {}).get("id", "").rsplit("/", 1)[-1],
                             (s.get("object") or {}).get("id"), actor.get("mbox"),
                             (actor.get("account") or {}).get("name"), s.get("timestamp")))
    return pd.DataFrame(rows, columns=["id", "verb", "object", "mbox", "account", "timestamp"])


def _trained(folder: Path, course: str) -> pd.Series:
    """Each trained rep's training day (its first completion of the course, in UTC), by CRM user id.

    A completion is a statement (completed or passed, not voided) or a completed row of the
    completion report, lms/completions.csv: an LMS may report some completions only there.
    """
    s = _statements(folder, course)
    voided = set(s.loc[s["verb"] == "voided", "object"])
    s = s[(s["object"] == course) & s["verb"].isin(["completed", "passed"]) & ~s["id"].isin(voided)]
    learners = pd.read_csv(folder / "lms/learners.csv", usecols=["learner_id", "email"], dtype=str)
    by_account = dict(zip(learners["learner_id"], learners["email"].str.strip().str.lower(), strict=True))
    email = s["mbox"].str.removeprefix("mailto:").str.strip().str.lower()
    email = email.fillna(s["account"].map(by_account))
    users = pd.read_csv(folder / "crm/User.csv", usecols=["Id", "Email"], dtype=str, encoding="utf-8-sig")
    user_of = dict(zip(users["Email"].str.strip().str.lower(), users["Id"], strict=True))
    report = pd.read_csv(folder / "lms/completions.csv", dtype=str,
                         usecols=["learner_id", "learner_email", "course_id", "completed_at"])
    report = report[report["course_id"] == course]
    report_email = report["learner_email"].str.strip().str.lower().fillna(report["learner_id"].map(by_account))
    done = pd.concat([
        pd.DataFrame({"rep": email.map(user_of),
                      "at": pd.to_datetime(s["timestamp"], utc=True, errors="coerce", format="ISO8601")}),
        pd.DataFrame({"rep": report_email.map(user_of),
                      "at": pd.to_datetime(report["completed_at"], utc=True, errors="coerce", format="ISO8601")}),
    ]).dropna()
    return done.groupby("rep")["at"].min().dt.tz_localize(None).dt.normalize().sort_index()


def _deals(folder: Path) -> pd.DataFrame:
    """Live deals with an owner and a creation day: outcome, amount in cents, cycle in days."""
    o = pd.read_csv(folder / "crm/Opportunity.csv", encoding="utf-8-sig", dtype=str,
                    usecols=["IsDeleted", "OwnerId", "Amount", "CloseDate", "IsClosed", "IsWon", "CreatedDate"])
    o = o[o["IsDeleted"].str.lower() != "true"]
    created = pd.to_datetime(o["CreatedDate"], utc=True, errors="coerce", format="ISO8601")
    o = o.assign(created=created.dt.tz_localize(None).dt.normalize()).dropna(subset=["OwnerId", "created"])
    closed = o["IsClosed"].str.lower() == "true"
    won = o["IsWon"].str.lower() == "true"
    cents = (pd.to_numeric(o["Amount"], errors="coerce") * 100).round().fillna(0).astype(np.int64)
    close = pd.to_datetime(o["CloseDate"], errors="coerce", format="%Y-%m-%d")
    cycle = (close - o["created"]).dt.days.where(closed, 0).fillna(0)
    return pd.DataFrame({"rep": o["OwnerId"], "created": o["created"], "closed": closed.astype(np.int64),
                         "won": won.astype(np.int64), "won_cents": cents.where(won, 0), "pipeline_cents": cents,
                         "cycle_days": cycle.astype(np.int64)})


def _sums(deals: pd.DataFrame, anchors: pd.DataFrame) -> np.ndarray:
    """Per rep (in ``anchors``' order): the sums of its deals in its baseline, then in its post window."""
    first, stop = deals["created"].min().date(), (deals["created"].max() + pd.Timedelta(days=1)).date()
    j = deals.merge(anchors, on="rep")
    days = (j["created"] - j["anchor"]).dt.days
    parts = []
    for lo, hi in ((-m.BASELINE_DAYS, 0), (0, m.WINDOW_DAYS)):
        inside = j[(days >= lo) & (days < hi)]
        s = inside.groupby("rep")[list(m.SUMS[:-1])].sum().reindex(anchors["rep"], fill_value=0)
        s["months"] = m.exposure_months(anchors["anchor"].to_numpy().astype("datetime64[D]"), lo, hi, first, stop)
        parts.append(s.to_numpy(dtype=np.float64))
    return np.hstack(parts)


def answer(folder: Path, course: str = m.COURSE, program: str = m.PROGRAM) -> dict[str, Any]:
    """The default study's figures from the raw files in ``folder``."""
    trained = _trained(folder, course)
    deals = _deals(folder)
    others = sorted(set(deals["rep"]) - set(trained.index))
    pseudo = m.pseudo_anchors([d.date() for d in trained], len(others))
    t = pd.DataFrame({"rep": trained.index, "anchor": trained.to_numpy()})
    c = pd.DataFrame({"rep": others, "anchor": pd.to_datetime(pd.Series(pseudo, dtype="object"))})
    costs = pd.read_csv(folder / "costs.csv", dtype={"program": str, "amount": str})
    mine = pd.to_numeric(costs.loc[costs["program"] == program, "amount"], errors="coerce")
    cost_cents = int((mine * 100).round().fillna(0).astype(np.int64).sum())
    return m.figures(_sums(deals, t), _sums(deals, c), cost_cents, trained_reps=len(t), comparison_reps=len(c))


def main() -> None:
    """Answer the default study from the raw files and print (and write) its figures."""
    args = m.arguments(__doc__ or "")
    m.write(answer(args.folder, args.course, args.program), args.out)

if __name__ == "__main__":
    main()
