"""The LMS population and its directory, ``lms/learners.csv``.

Every CRM user is a learner (with the same index), and so are partner staff, who have no CRM user,
and a few orphan learner ids that statements name but the directory lacks.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl

from training_roi.simulate.draws import _stream
from training_roi.simulate.fields import _dates, _mixed_case
from training_roi.simulate.org import _Org, _people
from training_roi.simulate.period import _NEVER, _Calendar

_PARTNER_DOMAINS = ("northstar-partners.com", "channelpro.example.net", "contractor.example.org")


@dataclass
class _Learners:
    """Everyone who appears in the LMS: CRM users (same index), partners, and orphans.

    Orphans are learner ids seen in statements (account actors) but missing from the directory,
    e.g. accounts deleted from the LMS: they can never be linked.
    """

    n_users: int
    n_ext: int
    n_orphan: int
    user: np.ndarray  # CRM user index, -1 for partners and orphans
    learner_id: pl.Series
    dir_email: pl.Series  # as written in learners.csv (some mixed case)
    mbox_email: pl.Series  # as written in statements (some mixed case)
    name: pl.Series
    department: pl.Series
    title: pl.Series
    hire_day: np.ndarray
    leave_day: np.ndarray
    offset_min: np.ndarray
    account_always: np.ndarray  # identified only by an account actor
    mixed_mbox: np.ndarray
    mixed_dir: np.ndarray
    in_directory: np.ndarray

    @property
    def n(self) -> int:
        """Number of learners."""
        return self.user.size


def _build_learners(cal: _Calendar, org: _Org, seed: int) -> _Learners:
    """Create the LMS population: every CRM user, plus partner staff and a few orphan ids."""
    rng = _stream(seed, "learners")
    n_users = org.kind.size
    n_ext = max(3, round(0.06 * org.n_reps))
    n_orphan = max(1, round(org.n_reps / 4000))
    n = n_users + n_ext + n_orphan
    efirst, elast, elocal = _people(rng, n_ext + n_orphan)
    edomain = pl.Series(_PARTNER_DOMAINS).gather(rng.integers(0, len(_PARTNER_DOMAINS), n_ext + n_orphan))
    eemail = pl.select(pl.concat_str([elocal, pl.lit("@"), edomain])).to_series()
    is_contractor = rng.random(n_ext + n_orphan) < 0.3
    email = pl.concat([org.email, eemail])
    ids = rng.choice(9_000_000, size=n, replace=False) + 1_000_000
    learner_id = pl.Series([f"L{i}" for i in ids.tolist()], dtype=pl.String)
    user = np.concatenate([np.arange(n_users), np.full(n_ext + n_orphan, -1)])
    ext_offset = np.array([-300, -360, -480, 0, 60])[rng.integers(0, 5, n_ext + n_orphan)]
    ext_hire = -rng.integers(30, 1500, n_ext + n_orphan)
    ext_leave = np.full(n_ext + n_orphan, _NEVER, np.int64)
    # Orphans: short-lived LMS accounts somewhere in the period.
    o_start = rng.integers(0, max(1, cal.n_days - 120), n_orphan)
    ext_hire[n_ext:] = o_start
    ext_leave[n_ext:] = o_start + 120
    in_directory = np.concatenate([np.ones(n_users + n_ext, bool), np.zeros(n_orphan, bool)])
    mixed_mbox = (rng.random(n) < 0.25) & in_directory
    mixed_dir = (rng.random(n) < 0.08) & in_directory
    style = rng.integers(0, 2, n)
    emails = email.to_list()
    mbox = [_mixed_case(e, int(s)) if m else e for e, s, m in zip(emails, style, mixed_mbox, strict=True)]
    direct = [_mixed_case(e, 1) if m else e for e, m in zip(emails, mixed_dir, strict=True)]
    account_always = (rng.random(n) < 0.15) | ~in_directory
    return _Learners(
        n_users=n_users, n_ext=n_ext, n_orphan=n_orphan, user=user, learner_id=learner_id,
        dir_email=pl.Series(direct, dtype=pl.String), mbox_email=pl.Series(mbox, dtype=pl.String),
        name=pl.concat([
            pl.select(pl.concat_str([org.first, pl.lit(" "), org.last])).to_series(),
            pl.select(pl.concat_str([efirst, pl.lit(" "), elast])).to_series(),
        ]),
        department=pl.concat([
            org.users["Department"],
            pl.select(pl.when(pl.Series(is_contractor)).then(pl.lit("Contractor"))
                      .otherwise(pl.lit("Partner - Channel Sales"))).to_series(),
        ]),
        title=pl.concat([
            org.users["Title"],
            pl.select(pl.when(pl.Series(is_contractor)).then(pl.lit("Contract Sales Consultant"))
                      .otherwise(pl.lit("Channel Account Manager"))).to_series(),
        ]),
        hire_day=np.concatenate([org.hire_day, ext_hire]),
        leave_day=np.concatenate([org.leave_day, ext_leave]),
        offset_min=np.concatenate([org.offset_min, ext_offset]),
        account_always=account_always, mixed_mbox=mixed_mbox, mixed_dir=mixed_dir,
        in_directory=in_directory,
    )


def _learners_frame(cal: _Calendar, lr: _Learners) -> pl.DataFrame:
    """Build ``lms/learners.csv``: the LMS directory (orphan ids are, by definition, missing)."""
    keep = np.flatnonzero(lr.in_directory)
    return pl.DataFrame({
        "learner_id": lr.learner_id.gather(keep),
        "email": lr.dir_email.gather(keep),
        "name": lr.name.gather(keep),
        "department": lr.department.gather(keep),
        "title": lr.title.gather(keep),
        "hire_date": _dates(cal.start_day + lr.hire_day[keep]),
    })
