"""xAPI statements: held as parallel arrays, rendered as JSON lines, written with an LRS export's mess.

This is what every statements file shares: verbs and activity types, the statements of a course
enrolment (:func:`_program_statements`), actors and time zones, duplicates, truncated and foreign
lines, and the counts truth.json reports. Rendering splices JSON fragments, encoded once with
orjson, into polars string columns, so millions of statements need no Python loop per line.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import polars as pl

from training_roi.simulate.draws import _at_least
from training_roi.simulate.period import _Calendar
from training_roi.simulate.program import _LESSONS, _LMS_HOME
from training_roi.simulate.training import _Training

_VERBS = ("launched", "initialized", "experienced", "completed", "passed", "failed", "terminated", "voided",
          "answered")
_V = {v: i for i, v in enumerate(_VERBS)}

_TYPE_IRI = {
    "course": "http://adlnet.gov/expapi/activities/course",
    "lesson": "http://adlnet.gov/expapi/activities/lesson",
    "module": "http://adlnet.gov/expapi/activities/module",
    "video": "https://w3id.org/xapi/video/activity-type/video",
    "quiz": "http://adlnet.gov/expapi/activities/assessment",
    "live": "http://adlnet.gov/expapi/activities/meeting",
    "question": "http://adlnet.gov/expapi/activities/cmi.interaction",
}

_ADMIN_ACTOR = {"objectType": "Agent", "name": "LMS Administrator", "mbox": "mailto:lms-admin@example.com"}
_AUTHORITY = orjson.dumps(
    {"objectType": "Agent", "name": "Example LMS", "account": {"homePage": _LMS_HOME, "name": "lrs-client"}}
).decode()
_ROLE_OTHER, _ROLE_LESSON, _ROLE_COMPLETED, _ROLE_SPURIOUS, _ROLE_VOID, _ROLE_GROUP, _ROLE_QUIZ = range(7)


@dataclass
class _Stmts:
    """Statements as parallel arrays (one entry per statement), rendered to JSON at the end."""

    learner: np.ndarray  # learner index, -1: none (administrator, group)
    group: np.ndarray  # group index, -1: none
    verb: np.ndarray  # index into _VERBS
    activity: np.ndarray  # activity index, -1: the object is a StatementRef
    ref: np.ndarray  # statement index a voiding statement targets, -1: none
    reg: np.ndarray  # registration (enrolment) index, -1: none
    completion: np.ndarray  # result.completion: -1 absent, 0 false, 1 true
    success: np.ndarray  # result.success: -1 absent, 0 false, 1 true
    raw: np.ndarray  # result.score.raw (0–100), -1 absent
    duration: np.ndarray  # result.duration in seconds, -1 absent
    ts_ms: np.ndarray  # when it happened, UTC epoch milliseconds
    role: np.ndarray  # what the statement is for the truth (_ROLE_*)

    @classmethod
    def make(cls, n: int, **columns: np.ndarray | int) -> _Stmts:
        """Return ``n`` statements; columns not given are absent (-1)."""
        out = {}
        for f in fields(cls):
            value = columns.get(f.name, -1)
            out[f.name] = np.broadcast_to(np.asarray(value, np.int64), (n,)).copy()
        return cls(**out)

    @classmethod
    def concat(cls, parts: list[_Stmts], *, shift_refs: bool = True) -> _Stmts:
        """Concatenate parts.

        With ``shift_refs``, each part's ``ref`` indices count from the part's own start and are
        shifted by its offset; without, they already count from the start of the result.
        """
        offset = 0
        refs = []
        for p in parts:
            refs.append(np.where(p.ref >= 0, p.ref + offset * shift_refs, -1))
            offset += p.learner.size
        out = {f.name: np.concatenate([getattr(p, f.name) for p in parts]) for f in fields(cls)}
        out["ref"] = np.concatenate(refs)
        return cls(**out)

    def take(self, idx: np.ndarray) -> _Stmts:
        """Return the statements at ``idx`` (``ref`` keeps pointing at global indices)."""
        return _Stmts(**{f.name: getattr(self, f.name)[idx] for f in fields(self)})


def _program_statements(rng: np.random.Generator, tr: _Training, *, n_lessons: int = len(_LESSONS),
                        quiz_activity: int = 0) -> _Stmts:
    """Statements of a course (activity 0, lessons 1…): lessons, quiz, completion, voided mistakes.

    ``quiz_activity`` is the activity the quiz's passed / failed statements are about: the course
    itself (the Sales Excellence course), or a final assessment of its own (the academy's).
    """
    ne = tr.e_learner.size
    nl = n_lessons
    frac = np.sort(rng.random((ne, nl)), axis=1)
    frac[:, 0] = 0.0
    start_ms = tr.e_start_s * 1000
    span_ms = np.maximum(tr.e_lesson_hi_s - tr.e_start_s, 3600) * 1000 - 20 * 60 * 1000
    t0 = start_ms[:, None] + (frac * span_ms[:, None]).astype(np.int64)
    dur = rng.integers(240, 900, (ne, nl))
    steps = np.stack([np.zeros_like(dur), np.full_like(dur, 3), np.full_like(dur, 8), dur, dur + 3], axis=2)
    lesson_verbs = np.array([_V["launched"], _V["initialized"], _V["experienced"], _V["completed"], _V["terminated"]])
    done = (np.arange(nl)[None, :] < tr.e_lessons[:, None])
    mask = np.broadcast_to(done[:, :, None], (ne, nl, 5))
    shape = (ne, nl, 5)
    b_learner = np.broadcast_to(tr.e_learner[:, None, None], shape)[mask]
    b_reg = np.broadcast_to(np.arange(ne)[:, None, None], shape)[mask]
    b_act = np.broadcast_to(1 + np.arange(nl)[None, :, None], shape)[mask]
    b_verb = np.broadcast_to(lesson_verbs[None, None, :], shape)[mask]
    b_ts = (t0[:, :, None] + steps * 1000)[mask]
    b_dur = np.where(b_verb == _V["completed"], np.broadcast_to(dur[:, :, None], shape)[mask],
                     np.where(b_verb == _V["terminated"], np.broadcast_to(dur[:, :, None] + 3, shape)[mask], -1))
    lessons = _Stmts.make(
        b_learner.size, learner=b_learner, verb=b_verb, activity=b_act, reg=b_reg, ts_ms=b_ts,
        completion=np.where(b_verb == _V["completed"], 1, -1), duration=b_dur, role=_ROLE_LESSON,
    )
    total_s = (dur * done).sum(axis=1)

    comp = np.flatnonzero(tr.e_complete_s >= 0)
    fail = comp[tr.e_fail_first[comp]]
    failed = _Stmts.make(
        fail.size, learner=tr.e_learner[fail], verb=_V["failed"], activity=quiz_activity, reg=fail,
        ts_ms=(tr.e_complete_s[fail] - rng.integers(20 * 3600, 28 * 3600, fail.size)) * 1000
        + rng.integers(0, 1000, fail.size),
        raw=rng.integers(40, 70, fail.size), success=0, duration=rng.integers(300, 900, fail.size),
        role=_ROLE_QUIZ,
    )
    passed = _Stmts.make(
        comp.size, learner=tr.e_learner[comp], verb=_V["passed"], activity=quiz_activity, reg=comp,
        ts_ms=(tr.e_complete_s[comp] - rng.integers(60, 180, comp.size)) * 1000 + rng.integers(0, 1000, comp.size),
        raw=rng.integers(70, 101, comp.size), success=1, duration=rng.integers(300, 900, comp.size),
        role=_ROLE_QUIZ,
    )
    completed = _Stmts.make(
        comp.size, learner=tr.e_learner[comp], verb=_V["completed"], activity=0, reg=comp,
        ts_ms=tr.e_complete_s[comp] * 1000 + rng.integers(0, 1000, comp.size), completion=1,
        duration=total_s[comp], role=_ROLE_COMPLETED,
    )
    bad = np.flatnonzero(tr.e_spurious_s >= 0)
    spurious = _Stmts.make(
        bad.size, learner=tr.e_learner[bad], verb=_V["completed"], activity=0, reg=bad,
        ts_ms=tr.e_spurious_s[bad] * 1000 + rng.integers(0, 1000, bad.size), completion=1,
        duration=rng.integers(0, 60, bad.size), role=_ROLE_SPURIOUS,
    )
    first_spurious = lessons.learner.size + failed.learner.size + passed.learner.size + completed.learner.size
    voids = _Stmts.make(
        bad.size, verb=_V["voided"], ref=first_spurious + np.arange(bad.size),
        ts_ms=tr.e_void_s[bad] * 1000 + rng.integers(0, 1000, bad.size), role=_ROLE_VOID,
    )
    return _Stmts.concat([lessons, failed, passed, completed, spurious, voids], shift_refs=False)


_ActivitySpec = tuple[str, str, str, dict[str, Any]]  # (IRI, title, kind, contextActivities)


def _activity_json(acts: list[_ActivitySpec]) -> tuple[list[str], list[str], list[str]]:
    """Return per activity: the object JSON, the full context JSON, and its tail after ``{``.

    The tail lets a registration be spliced in front without re-encoding per statement.
    """
    objects, full, tail = [], [], []
    for iri, title, kind, ctx_acts in acts:
        objects.append(orjson.dumps({"objectType": "Activity", "id": iri,
                                     "definition": {"name": {"en-US": title}, "type": _TYPE_IRI[kind]}}).decode())
        ctx: dict[str, Any] = {}
        if ctx_acts:
            ctx["contextActivities"] = ctx_acts
        ctx["platform"] = "Example LMS"
        ctx["language"] = "en-US"
        text = orjson.dumps(ctx).decode()
        full.append(text)
        tail.append(text[1:])
    return objects, full, tail


@dataclass
class _LmsCounts:
    """What the statements file holds, for truth.json's mess counts."""

    lines: int = 0
    statements: int = 0
    duplicate_statements: int = 0
    malformed_lines: int = 0
    voided_completions: int = 0
    account_actor_statements: int = 0
    account_actor_unknown_learner_statements: int = 0
    mixed_case_email_statements: int = 0
    group_actor_statements: int = 0
    timestamps_with_offset: int = 0
    program_completions: int = 0

    @classmethod
    def of(cls, written: _Lines, st: _Stmts, tz: np.ndarray, **mess: int) -> _LmsCounts:
        """The counts of every statements file, from what :func:`_write_lines` wrote; ``mess`` adds the others."""
        valid = written.keep
        return cls(
            lines=written.lines,
            statements=int(valid.size),
            duplicate_statements=int(written.duplicates.size),
            malformed_lines=int(written.lost.size + 2),
            voided_completions=int((st.role == _ROLE_SPURIOUS).sum()),
            timestamps_with_offset=int((tz[valid] > 0).sum()),
            program_completions=int((st.role == _ROLE_COMPLETED).sum()),
            **mess,
        )


def _agents(names: list[str], mboxes: list[str], learner_ids: list[str], home: str) -> list[str]:
    """The actor JSON of every learner identified by their mbox, then of every one by their account at ``home``."""
    actors = [orjson.dumps({"objectType": "Agent", "name": nm, "mbox": f"mailto:{mb}"}).decode()
              for nm, mb in zip(names, mboxes, strict=True)]
    actors += [orjson.dumps({"objectType": "Agent", "name": nm, "account": {"homePage": home, "name": lid}}).decode()
               for nm, lid in zip(names, learner_ids, strict=True)]
    return actors


def _offset_text(minutes: int) -> str:
    """Return a UTC offset as ``+02:00`` / ``-05:00``."""
    sign = "+" if minutes >= 0 else "-"
    h, m = divmod(abs(minutes), 60)
    return f"{sign}{h:02d}:{m:02d}"


def _time_zones(st: _Stmts, offset_min: np.ndarray, offset: np.ndarray,
                as_z: np.ndarray) -> tuple[np.ndarray, list[str], np.ndarray]:
    """Write each statement's timestamp in its learner's ``offset`` (minutes), or in UTC where ``as_z``.

    Returns per statement the index of its suffix, the suffixes (``Z``, then each offset of
    ``offset_min`` and 0 as ``-05:00`` …), and per statement the local time in epoch milliseconds.
    """
    offsets = sorted({int(x) for x in offset_min.tolist()} | {0})
    tz = np.where(as_z, 0, 1 + np.searchsorted(np.array(offsets), offset))
    local_ms = st.ts_ms + np.where(as_z, 0, offset) * 60_000
    return tz, ["Z"] + [_offset_text(m) for m in offsets], local_ms


@dataclass(frozen=True)
class _Lines:
    """What :func:`_write_lines` wrote: lines, the statements kept whole, and the mess added."""

    lines: int
    keep: np.ndarray  # statement indices written as well-formed lines (sorted)
    duplicates: np.ndarray  # statement indices written a second time
    lost: np.ndarray  # statement indices whose line was truncated


def _write_lines(path: Path, rng: np.random.Generator, cal: _Calendar, st: _Stmts, *, ids: pl.Series,
                 regs: pl.Series, actor_json: list[str], actor: np.ndarray, tz: np.ndarray, suffixes: list[str],
                 local_ms: np.ndarray, activities: list[_ActivitySpec],
                 report: Callable[[str, float], None]) -> _Lines:
    """Write statements as JSON lines in order of storage, with duplicates and malformed lines.

    ``actor`` indexes ``actor_json``, ``tz`` indexes ``suffixes`` and ``activities`` lists the
    activities that ``st.activity`` indexes; ``local_ms`` is each timestamp in its own offset.
    """
    n = st.learner.size
    delay = np.where(rng.random(n) < 0.85, rng.integers(200, 90_000, n), rng.integers(300_000, 36 * 3600_000, n))
    stored_ms = st.ts_ms + delay

    # Mess: lost (truncated) lines, duplicates, and two lines that are not statements at all.
    others = np.flatnonzero(st.role == _ROLE_OTHER)
    lost = _at_least(rng, others, 1 / 300_000, 2)
    keep = np.setdiff1d(np.arange(n), lost)
    dups = _at_least(rng, keep, 0.002, 2)
    line_stmt = np.concatenate([keep, dups, lost, [0, 0]])
    special = np.concatenate([np.zeros(keep.size + dups.size, np.int8), np.ones(lost.size, np.int8), [2, 3]])
    key = np.concatenate([stored_ms[keep], stored_ms[dups] + rng.integers(3600_000, 72 * 3600_000, dups.size),
                          stored_ms[lost], rng.integers(cal.start_s * 1000, cal.end_s * 1000, 2)])
    order = np.lexsort((np.arange(key.size), key))

    look = {
        "ids": ids, "regs": regs, "actors": pl.Series(actor_json, dtype=pl.String),
        "verbs": pl.Series([orjson.dumps({"id": f"http://adlnet.gov/expapi/verbs/{v}",
                                          "display": {"en-US": v}}).decode() for v in _VERBS]),
        "suffix": pl.Series(suffixes),
    }
    objects, ctx_full, ctx_tail = _activity_json(activities)
    look |= {"objects": pl.Series(objects), "ctx_full": pl.Series(ctx_full), "ctx_tail": pl.Series(ctx_tail)}
    chunk = 200_000
    with path.open("wb") as fh:
        for begin in range(0, order.size, chunk):
            at = order[begin : begin + chunk]
            s = line_stmt[at]
            lines = _render(st.take(s), s, actor[s], tz[s], local_ms[s], stored_ms[s], look)
            sp = special[at]
            if (sp > 0).any():
                fix = np.flatnonzero(sp > 0)
                values = []
                for i in fix.tolist():
                    if sp[i] == 1:
                        text = lines[i]
                        values.append(text[: max(10, int(len(text) * rng.uniform(0.3, 0.8)))])
                    elif sp[i] == 2:
                        values.append('"--- LRS export: page 2 of statements ---"')
                    else:
                        values.append("<html><body><h1>502 Bad Gateway</h1></body></html>")
                lines = lines.scatter(fix, values)
            pl.DataFrame({"line": lines}).write_csv(fh, include_header=False, quote_style="never")
            report("Writing xAPI statements", min(1.0, (begin + at.size) / order.size))

    return _Lines(lines=int(order.size), keep=keep, duplicates=dups, lost=lost)


def _render(st: _Stmts, s: np.ndarray, actor: np.ndarray, tz: np.ndarray, local_ms: np.ndarray,
            stored_ms: np.ndarray, look: dict[str, pl.Series]) -> pl.Series:
    """Render statements as JSON lines with polars string operations (no per-line Python)."""
    act = np.maximum(st.activity, 0)
    df = pl.DataFrame({
        "id": look["ids"].gather(s),
        "actor": look["actors"].gather(actor),
        "verb": look["verbs"].gather(st.verb),
        "obj": look["objects"].gather(act),
        "is_ref": st.activity < 0,
        "ref": look["ids"].gather(np.maximum(st.ref, 0)),
        "has_reg": st.reg >= 0,
        "reg": look["regs"].gather(np.maximum(st.reg, 0)),
        "ctx_full": look["ctx_full"].gather(act),
        "ctx_tail": look["ctx_tail"].gather(act),
        "raw": st.raw, "success": st.success, "completion": st.completion, "dur": st.duration,
        "ts": pl.from_epoch(pl.Series(local_ms), time_unit="ms").dt.strftime("%Y-%m-%dT%H:%M:%S%.3f"),
        "tz": look["suffix"].gather(tz),
        "stored": pl.from_epoch(pl.Series(stored_ms), time_unit="ms").dt.strftime("%Y-%m-%dT%H:%M:%S%.3fZ"),
    })
    c = pl.col
    d = c("dur")
    duration = pl.concat_str([
        pl.lit("PT"),
        pl.when(d >= 3600).then(pl.concat_str([(d // 3600).cast(pl.String), pl.lit("H")])).otherwise(pl.lit("")),
        pl.when((d % 3600) >= 60).then(pl.concat_str([((d % 3600) // 60).cast(pl.String), pl.lit("M")]))
        .otherwise(pl.lit("")),
        pl.when(((d % 60) > 0) | (d == 0)).then(pl.concat_str([(d % 60).cast(pl.String), pl.lit("S")]))
        .otherwise(pl.lit("")),
    ])
    inner = pl.concat_str([
        pl.when(c("raw") >= 0).then(pl.concat_str([
            pl.lit('"score":{"scaled":'), (c("raw") / 100).cast(pl.String), pl.lit(',"raw":'),
            c("raw").cast(pl.String), pl.lit(',"min":0,"max":100}')])),
        pl.when(c("success") >= 0).then(pl.when(c("success") == 1).then(pl.lit('"success":true'))
                                        .otherwise(pl.lit('"success":false'))),
        pl.when(c("completion") >= 0).then(pl.when(c("completion") == 1).then(pl.lit('"completion":true'))
                                           .otherwise(pl.lit('"completion":false'))),
        pl.when(d >= 0).then(pl.concat_str([pl.lit('"duration":"'), duration, pl.lit('"')])),
    ], separator=",", ignore_nulls=True)
    result = pl.when(inner != "").then(pl.concat_str([pl.lit(',"result":{'), inner, pl.lit("}")])).otherwise(pl.lit(""))
    obj = pl.when(c("is_ref")).then(pl.concat_str([pl.lit('{"objectType":"StatementRef","id":"'), c("ref"),
                                                   pl.lit('"}')])).otherwise(c("obj"))
    context = (
        pl.when(c("is_ref")).then(pl.lit(""))
        .when(c("has_reg")).then(pl.concat_str([pl.lit(',"context":{"registration":"'), c("reg"), pl.lit('",'),
                                                c("ctx_tail")]))
        .otherwise(pl.concat_str([pl.lit(',"context":'), c("ctx_full")]))
    )
    line = pl.concat_str([
        pl.lit('{"id":"'), c("id"), pl.lit('","actor":'), c("actor"), pl.lit(',"verb":'), c("verb"),
        pl.lit(',"object":'), obj, result, context, pl.lit(',"timestamp":"'), c("ts"), c("tz"),
        pl.lit('","stored":"'), c("stored"), pl.lit('","authority":'), pl.lit(_AUTHORITY),
        pl.lit(',"version":"1.0.3"}'),
    ])
    return df.select(line.alias("line")).to_series()
