"""The seed's model as DuckDB SQL on the raw files: the speed goals' second reference.

    python benchmarks/reference_duckdb.py DATA_FOLDER [--out result.json]

The same model as `reference_pandas.py`, the same inputs and the same rules, with the reading,
linking, training dates and windows done in SQL (``read_csv``, ``read_json``, joins on the
windows), in an in-memory database. Python draws the comparison reps' pseudo dates (the shared
draws of :mod:`refmodel`) and multiplies the per-rep sums by the shared replicate weights (the
bootstrap as one matrix product). Its figures equal the pandas script's exactly: money is summed
in whole cents, so no sum depends on the order rows are added in.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa

import refmodel as m

_STATEMENT = ('{"id": "VARCHAR", "actor": {"mbox": "VARCHAR", "account": {"name": "VARCHAR"}}, '
              '"verb": {"id": "VARCHAR"}, "object": {"id": "VARCHAR"}, "timestamp": "VARCHAR"}')

_STATEMENTS = """
CREATE TEMP TABLE s AS
    SELECT j.id, regexp_extract(j.verb.id, '[^/]*$') AS verb, j.object.id AS object,
           lower(trim(replace(j.actor.mbox, 'mailto:', ''))) AS mbox, j.actor.account.name AS account,
           try_cast(j."timestamp" AS TIMESTAMPTZ) AS at
    FROM (SELECT json_transform(json, '{statement}') AS j
          FROM read_json_objects(?, format = 'newline_delimited', ignore_errors = true)
          WHERE contains(json, ?) OR contains(json, 'voided'))
"""

_TRAINED = """
WITH learners AS (
    SELECT learner_id, lower(trim(email)) AS email FROM read_csv(?, header = true, all_varchar = true)
),
users AS (
    SELECT "Id" AS rep, lower(trim("Email")) AS email FROM read_csv(?, header = true, all_varchar = true)
),
done AS (
    SELECT coalesce(s.mbox, l.email) AS email, s.at
    FROM s LEFT JOIN learners l ON s.account = l.learner_id
    WHERE s.object = ? AND s.verb IN ('completed', 'passed') AND s.at IS NOT NULL
      AND s.id NOT IN (SELECT object FROM s WHERE verb = 'voided' AND object IS NOT NULL)
    UNION ALL
    SELECT coalesce(lower(trim(c.learner_email)), l.email), try_cast(c.completed_at AS TIMESTAMPTZ)
    FROM read_csv(?, header = true, all_varchar = true) c LEFT JOIN learners l ON c.learner_id = l.learner_id
    WHERE c.course_id = ?
)
SELECT u.rep, min(timezone('UTC', d.at))::DATE AS anchor
FROM done d JOIN users u ON u.email = d.email
WHERE d.at IS NOT NULL
GROUP BY u.rep
ORDER BY u.rep
"""

_DEALS = """
CREATE TEMP TABLE deals AS
WITH o AS (
    SELECT "OwnerId" AS rep, timezone('UTC', try_cast("CreatedDate" AS TIMESTAMPTZ))::DATE AS created,
           lower("IsClosed") = 'true' AS closed, lower("IsWon") = 'true' AS won,
           coalesce(round(try_cast("Amount" AS DOUBLE) * 100)::BIGINT, 0) AS cents,
           try_cast("CloseDate" AS DATE) AS close_date
    FROM read_csv(?, header = true, all_varchar = true)
    WHERE lower(coalesce("IsDeleted", '')) <> 'true'
)
SELECT rep, created, closed::BIGINT AS closed, won::BIGINT AS won, CASE WHEN won THEN cents ELSE 0 END AS won_cents,
       cents AS pipeline_cents, CASE WHEN closed THEN coalesce(close_date - created, 0) ELSE 0 END AS cycle_days
FROM o WHERE rep IS NOT NULL AND created IS NOT NULL
"""

_SUMS = """
SELECT a.rep,
       {sums}
FROM anchors a LEFT JOIN deals d ON d.rep = a.rep
GROUP BY a.rep, a.i ORDER BY a.i
"""

_COSTS = """
SELECT coalesce(sum(round(try_cast(amount AS DOUBLE) * 100)::BIGINT), 0)
FROM read_csv(?, header = true, all_varchar = true) WHERE program = ?
"""


def _sums_sql() -> str:
    parts = []
    for period, (lo, hi) in (("pre", (-m.BASELINE_DAYS, 0)), ("post", (0, m.WINDOW_DAYS))):
        inside = f"d.created - a.anchor >= {lo} AND d.created - a.anchor < {hi}"
        parts += [f"coalesce(sum({name}) FILTER (WHERE {inside}), 0) AS {period}_{name}" for name in m.SUMS[:-1]]
    return _SUMS.format(sums=",\n       ".join(parts))


def _per_rep(con: duckdb.DuckDBPyConnection, reps: list[str], anchors: Sequence[object], first: object,
             stop: object) -> np.ndarray:
    """Per rep, in the given order: the sums of its deals in its baseline, then in its post window."""
    table = pa.table({"i": pa.array(range(len(reps)), pa.int64()), "rep": pa.array(reps, pa.string()),
                      "anchor": pa.array(anchors, pa.date32())})
    con.register("anchors", table)
    rows = con.execute(_sums_sql()).fetchnumpy()
    con.unregister("anchors")
    days = np.array(anchors, dtype="datetime64[D]")
    n = len(m.SUMS) - 1
    pre = [rows[f"pre_{c}"].astype(np.float64) for c in m.SUMS[:n]]
    post = [rows[f"post_{c}"].astype(np.float64) for c in m.SUMS[:n]]
    return np.column_stack([*pre, m.exposure_months(days, -m.BASELINE_DAYS, 0, first, stop),  # type: ignore[arg-type]
                            *post, m.exposure_months(days, 0, m.WINDOW_DAYS, first, stop)])  # type: ignore[arg-type]


def answer(folder: Path, course: str = m.COURSE, program: str = m.PROGRAM) -> dict[str, Any]:
    """The default study's figures from the raw files in ``folder``."""
    con = duckdb.connect()
    statements = [str(p) for p in sorted(folder.glob("lms/**/*.jsonl"))]
    # The statements that name the course or a voiding, parsed once into a table (as a CTE, even a
    # materialised one, DuckDB took three times as long over the query that reads it twice).
    con.execute(_STATEMENTS.format(statement=_STATEMENT), [statements, course])
    trained = con.execute(_TRAINED, [str(folder / "lms/learners.csv"), str(folder / "crm/User.csv"), course,
                                     str(folder / "lms/completions.csv"), course]).fetchall()
    con.execute(_DEALS, [str(folder / "crm/Opportunity.csv")])
    first, last = con.execute("SELECT min(created), max(created) + 1 FROM deals").fetchone() or (None, None)
    others = [r for (r,) in con.execute("SELECT DISTINCT rep FROM deals WHERE rep NOT IN "
                                        "(SELECT unnest(?::VARCHAR[])) ORDER BY rep",
                                        [[r for r, _ in trained]]).fetchall()]
    days = [d for _, d in trained]
    pseudo = m.pseudo_anchors(days, len(others))
    cost = con.execute(_COSTS, [str(folder / "costs.csv"), program]).fetchone()
    result = m.figures(_per_rep(con, [r for r, _ in trained], days, first, last),
                       _per_rep(con, others, pseudo, first, last), int(cost[0]) if cost else 0,
                       trained_reps=len(trained), comparison_reps=len(others))
    con.close()
    return result


def main() -> None:
    """Answer the default study from the raw files and print (and write) its figures."""
    args = m.arguments(__doc__ or "")
    m.write(answer(args.folder, args.course, args.program), args.out)

if __name__ == "__main__":
    main()
