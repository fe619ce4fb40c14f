"""The ``push`` command: write each person's training facts into the CRM fields ``sync.yaml``'s ``push:`` maps.

Registered on the one ``training-roi`` command by :mod:`training_roi.cli`. It reads the study and
the ``result.json`` its report wrote, derives each person's facts
(:func:`training_roi.evaluation.crm_facts.training_facts`), and hands them to
:func:`training_roi.sync.push.push`, which writes only what differs. ``--dry-run`` prints the
change set and writes nothing; ``--history`` lists the latest pushes. The sync's lock beside the
warehouse is held while a push runs, so two pushes (or a push and a sync) of one warehouse never
overlap. Exit status 1 when the CRM
refused a record (each is named with its error), 2 for a mistake in the command or the configuration.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from training_roi.cli import DbOption, JsonOption, _err, _json, _out, _user_errors, app
from training_roi.errors import TrainingRoiError
from training_roi.warehouse.target import DEFAULT_DB

__all__ = ["push_command", "shown"]

_STOPPED = ("stopped (Ctrl-C): the records the CRM answered for are in push_audit; the next push compares again "
            "and writes what is still different")
_HISTORY = 10


def shown(value: Any) -> str:
    """A field's value as the change set shows it: ``(empty)``, true/false, or the text."""
    if value is None or value == "":
        return "(empty)"
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _result(path: Path) -> dict[str, Any]:
    """The ``result.json`` of a report folder (or the file itself)."""
    file = path / "result.json" if path.is_dir() else path
    try:
        doc = json.loads(file.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise TrainingRoiError(f"push.results: no result.json at {file}: run `training-roi report` first") from None
    except (OSError, ValueError) as exc:
        raise TrainingRoiError(f"push.results: {file} cannot be read as a result document ({exc})") from None
    if not isinstance(doc, dict) or "headline" not in doc:
        raise TrainingRoiError(f"push.results: {file} is not the result of a training program's report")
    return doc


def _changes(info: Any, names: dict[str, str]) -> Table:
    title = f"{'Dry run: changes not written' if info.dry_run else 'Push ' + info.run_id[:12]} ({info.object})"
    t = Table(title=title, title_justify="left")
    for col in ("record", "field", "now", "would write" if info.dry_run else "written"):
        t.add_column(col)
    if not info.dry_run:
        t.add_column("outcome")
    for r in info.records:
        label = f"{r.record_id} ({names[r.record_id]})" if r.record_id in names else r.record_id
        for i, c in enumerate(r.changes):
            cells = [escape(label) if not i else "", escape(c.field), escape(shown(c.old)), escape(shown(c.new))]
            if not info.dry_run:
                cells.append("" if i else "[red]failed[/]" if r.outcome == "failed" else r.outcome)
            t.add_row(*cells)
    return t


def _counts(info: Any) -> str:
    line = (f"{info.persons:,} person(s): {len(info.records):,} record(s) with a change, {info.unchanged:,} "
            "unchanged")
    if info.missing:
        line += f", {len(info.missing):,} not found in the CRM ({', '.join(info.missing[:5])}"
        line += ", …)" if len(info.missing) > 5 else ")"
    if info.dry_run:
        fields = sum(len(r.changes) for r in info.records)
        return line + f"; {fields:,} field(s) would be written. Nothing was written."
    return line + f"; {info.written:,} written, {len(info.failed):,} failed."


def _history(db: str, as_json: bool) -> None:
    from training_roi.sync.push import push_history
    from training_roi.warehouse.connection import connect

    con = connect(db)
    try:
        runs = push_history(con, _HISTORY)
    finally:
        con.disconnect()
    if as_json:
        _json({"pushes": [{k: (v.isoformat() if hasattr(v, "isoformat") else v) for k, v in r.items()}
                          for r in runs]})
        return
    t = Table(title="Latest pushes", title_justify="left")
    for col in ("started (UTC)", "target", "object", "study", "persons", "changed", "written", "failed", "status"):
        t.add_column(col, justify="right" if col in ("persons", "changed", "written", "failed") else "left")
    for r in runs:
        t.add_row(f"{r['started']:%Y-%m-%d %H:%M}", escape(r["target"]), r["object"], escape(r["study"] or ""),
                  f"{r['persons']:,}", f"{r['changed']:,}", f"{r['written']:,}", f"{r['failed']:,}",
                  r["status"] if r["status"] == "ok" else f"[red]{escape(r['status'])}[/]")
    _out().print(t if runs else "No push recorded in this warehouse yet.")


@app.command(name="push")
def push_command(
    config: Annotated[Path, typer.Option("--config", help="sync.yaml with a push: section (docs/push.md)")] = Path(
        "sync.yaml"),
    db: DbOption = DEFAULT_DB,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="print the changes (field, now → to write) and write "
                                                            "nothing")] = False,
    history: Annotated[bool, typer.Option("--history", help="list the latest pushes recorded in the warehouse")
                       ] = False,
    as_json: JsonOption = False,
) -> None:
    """Write each person's program, completion, cohort, holdout flag and credited effect into CRM fields."""
    from training_roi.cli.sync import lock_file
    from training_roi.evaluation.crm_facts import training_facts
    from training_roi.measure.population import grain_names
    from training_roi.study import load_study, plan_study
    from training_roi.sync import SyncLock, load_config, open_push_target
    from training_roi.sync.push import check_unit, push, push_config
    from training_roi.warehouse.connection import connect, require_tables

    err = _err()
    with _user_errors(_STOPPED):
        if history:
            _history(db, as_json)
            return
        cfg = load_config(config)
        settings = push_config(cfg)
        study = load_study(settings.study)
        plan = plan_study(study)
        check_unit(settings, plan.unit)
        result = _result(settings.results)
        with SyncLock(lock_file(cfg, db), "push"):
            con = connect(db)
            try:
                require_tables(con, "learning_record", "learner_identity", "crm_user")
                facts = training_facts(con, plan, result)
                target = open_push_target(cfg, settings, on_retry=lambda line, wait: err.print(
                    f"… {escape(line)}, in {wait:.1f} s", highlight=False, soft_wrap=True))
                try:
                    info = push(con, target, facts, settings.fields, study=f"{study.name} ({study.hash})",
                                dry_run=dry_run, progress=lambda line: err.print(f"… {escape(line)}", highlight=False))
                finally:
                    target.close()
                names = grain_names(con, "rep", [r.record_id for r in info.records]) if plan.unit == "rep" else {}
            finally:
                con.disconnect()
    if as_json:
        _json(info.asdict())
    else:
        out = _out()
        if info.records:
            out.print(_changes(info, names))
        out.print(_counts(info), highlight=False, soft_wrap=True)
        for r in info.failed:
            err.print(f"[red]error:[/] {escape(r.record_id)}: {escape(r.error or 'refused')}", highlight=False,
                      soft_wrap=True)
    if not info.ok:
        raise typer.Exit(1)
