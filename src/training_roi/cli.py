"""The ``training-roi`` command.

Each command is one stage of the flow (docs/architecture.md) or a convenience that chains them. Errors the
user can fix (a file, a row, a field, a key) print as one message and exit with status 2; a
source that was refused during ingest makes the command exit with status 1 after the summary.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from training_roi.errors import TrainingRoiError
from training_roi.warehouse.connection import DEFAULT_DB

app = typer.Typer(
    name="training-roi",
    help="Did the training program pay off? Links LMS learning to CRM pipeline and reports ROI.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
out = Console()
err = Console(stderr=True)

DbOption = Annotated[str, typer.Option(
    "--db", help="warehouse: a DuckDB file, or an Ibis connection URL (duckdb://PATH, postgres://…)")]
JsonOption = Annotated[bool, typer.Option("--json", help="print the result as JSON instead of tables")]


@contextmanager
def _user_errors() -> Iterator[None]:
    """Turn the product's own errors into a message and exit status 2, never a traceback."""
    try:
        yield
    except TrainingRoiError as exc:
        err.print(f"[red]error:[/] {exc}", highlight=False, soft_wrap=True)
        raise typer.Exit(2) from None
    except KeyboardInterrupt:
        # Loads replace tables only once a source is complete, so a stop leaves the warehouse as it was.
        err.print("stopped (Ctrl-C): nothing half-done was kept", highlight=False)
        raise typer.Exit(130) from None


def _version(value: bool) -> None:
    if value:
        from training_roi import __version__

        out.print(f"training-roi {__version__}", highlight=False)
        raise typer.Exit()


@app.callback()
def _main(version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True,
                                                help="print the version and exit")] = False) -> None:
    """Did the training program pay off? Links LMS learning to CRM pipeline and reports ROI."""


@contextmanager
def _progress(enabled: bool = True) -> Iterator[Callable[[str, float], None]]:
    """A progress bar on stderr; yields ``update(description, fraction)``."""
    if not enabled or (not err.is_terminal and not sys.stderr.isatty()):
        steps: list[str] = []

        def quiet(description: str, fraction: float) -> None:
            if not steps or steps[-1] != description:
                steps.append(description)
                err.print(f"… {description}", highlight=False)

        yield quiet
        return
    with Progress(TextColumn("{task.description:<40}"), BarColumn(), TextColumn("{task.percentage:>5.1f}%"),
                  TimeElapsedColumn(), console=err, transient=True) as bar:
        task = bar.add_task("starting", total=1.0)

        def update(description: str, fraction: float) -> None:
            bar.update(task, description=description, completed=fraction)

        yield update


def _method_help() -> str:
    from training_roi.isolate import METHODS

    return ("did (the study's default); all: every applicable estimator side by side, the credited value "
            f"following the recommended one; one estimator ({', '.join(METHODS)}); or dose (a micro-lesson "
            "program: the effect per lesson × the lessons each rep took); overrides isolation.method")


def _model_help() -> str:
    from training_roi.attribute import MODELS

    return f"{', '.join(MODELS)}; overrides attribution.model"


_METHOD_HELP = _method_help()
_MODEL_HELP = _model_help()


def _json(data: Any) -> None:
    out.print_json(json.dumps(data, default=str))


@app.command()
def simulate(
    out_dir: Annotated[Path, typer.Argument(help="folder to write the data files into")],
    reps: Annotated[int, typer.Option(min=2, help="number of sales reps")] = 200,
    months: Annotated[int, typer.Option(min=6, help="months of history")] = 24,
    seed: Annotated[int, typer.Option(help="random seed: same seed, same files")] = 7,
    scenario: Annotated[str, typer.Option(help="selection, randomised, null, … (see --help-scenarios)")] = "selection",
    list_scenarios: Annotated[bool, typer.Option("--help-scenarios", help="list the scenarios and exit")] = False,
) -> None:
    """Write a simulated sales org with a training program, and the true effect (truth.json)."""
    from training_roi import simulate as sim

    if list_scenarios:
        for name, text in sim.SCENARIOS.items():
            out.print(f"[bold]{name}[/]: {text}")
        return
    with _user_errors():
        if scenario not in sim.SCENARIOS:
            raise TrainingRoiError(f"--scenario {scenario!r} is unknown; choose one of {', '.join(sim.SCENARIOS)}")
        with _progress() as update:
            info = sim.simulate(out_dir, reps=reps, months=months, seed=seed, scenario=scenario, progress=update)
    out.print(str(info))


def _ingest(data_dir: Path, db: str, mapping: str | None, links: Path | None) -> tuple[Any, Any, Any]:
    from training_roi.ingest.folder import ingest_folder
    from training_roi.ingest.mapping import load_mapping
    from training_roi.linking import link as run_link
    from training_roi.warehouse.connection import connect
    from training_roi.warehouse.quality import quality_report

    m = load_mapping(mapping) if mapping else None
    con = connect(db)
    with _progress() as update:
        info = ingest_folder(data_dir, con, mapping=m,
                             progress=lambda what, i, n: update(f"reading {what}", i / max(n, 1)))
        update("linking learners to the CRM", 1.0)
        linked = run_link(con, explicit=links)
        update("checking data quality", 1.0)
        report = quality_report(con)
    return info, linked, report


@app.command()
def ingest(
    data_dir: Annotated[Path, typer.Argument(help="data folder (crm/, lms/, surveys.csv, costs.csv)")],
    db: DbOption = DEFAULT_DB,
    mapping: Annotated[str | None, typer.Option(help="column mapping: a YAML file or a shipped name")] = None,
    links: Annotated[Path | None, typer.Option(help="explicit learner → CRM id links (CSV: learner, crm_id)")] = None,
    as_json: JsonOption = False,
) -> None:
    """Load every source in DATA_DIR into the warehouse, link learners, and print the data quality."""
    from training_roi.present.console import ingest_table, link_panel, quality_panel

    with _user_errors():
        info, linked, report = _ingest(data_dir, db, mapping, links)
    if as_json:
        _json({"ingest": info.asdict(), "link": linked.asdict(), "quality": report.asdict()})
    else:
        out.print(ingest_table(info))
        out.print(link_panel(linked))
        out.print(quality_panel(report))
    if not info.ok:
        raise typer.Exit(1)


@app.command()
def link(
    db: DbOption = DEFAULT_DB,
    links: Annotated[Path | None, typer.Option(help="explicit learner → CRM id links (CSV: learner, crm_id)")] = None,
    as_json: JsonOption = False,
) -> None:
    """Resolve LMS learners to CRM users and contacts (also run at the end of ingest)."""
    from training_roi.linking import link as run_link
    from training_roi.present.console import link_panel
    from training_roi.warehouse.connection import connect, require_tables

    with _user_errors():
        con = connect(db, create=False)
        require_tables(con, "lms_statement", "crm_user")
        info = run_link(con, explicit=links)
    if as_json:
        _json(info.asdict())
    else:
        out.print(link_panel(info))


@app.command()
def quality(db: DbOption = DEFAULT_DB, as_json: JsonOption = False) -> None:
    """Print the data-quality summary of the warehouse: counts, quarantine, link coverage, warnings."""
    from training_roi.present.console import quality_panel
    from training_roi.warehouse.connection import connect, require_tables
    from training_roi.warehouse.quality import quality_report

    with _user_errors():
        con = connect(db, create=False)
        require_tables(con, "ingest_run")
        report = quality_report(con)
    if as_json:
        _json(report.asdict())
    else:
        out.print(quality_panel(report))


def _answer(db: str, study_file: Path, out_dir: Path, method: str | None = None) -> tuple[Any, dict[str, Path]]:
    """Evaluate the study (a training program or a CRM roll-out); write every file of the answer into ``out_dir``."""
    from training_roi.evaluation import evaluate
    from training_roi.present.answer import write_answer
    from training_roi.study import load_study
    from training_roi.warehouse.connection import connect

    study = load_study(study_file)
    _writable(out_dir)
    con = connect(db, create=False)
    with _progress() as update:
        answer = evaluate(con, study, method=method, progress=lambda what, f: update(f"{study.name}: {what}", f))
        update("writing the answer's files", 1.0)
    return answer, write_answer(answer, out_dir)


def _writable(out_dir: Path) -> None:
    """Refuse an output folder that cannot be one, before any work is done."""
    if out_dir.exists() and not out_dir.is_dir():
        raise TrainingRoiError(f"--out {out_dir}: is a file, not a folder")


def _wide() -> Console:
    """The console for tables with money columns, which must never be cut."""
    return Console(width=max(out.width, 120))


@app.command()
def report(
    study_file: Annotated[Path, typer.Argument(metavar="STUDY", help="the study file (YAML)")],
    db: DbOption = DEFAULT_DB,
    out_dir: Annotated[Path, typer.Option("--out", help="folder for result.json and report.html")] = Path("."),
    as_json: JsonOption = False,
    method: Annotated[str | None, typer.Option("--method", help=_METHOD_HELP)] = None,
) -> None:
    """Answer a study: lift, incremental revenue, fully loaded cost and ROI, with intervals."""
    from training_roi.present.answer import answer_document, answer_panel
    from training_roi.study import METHOD_CHOICES

    with _user_errors():
        if method is not None and method not in METHOD_CHOICES:
            raise TrainingRoiError(f"--method {method}: expected one of {', '.join(METHOD_CHOICES)}")
        answer, files = _answer(db, study_file, out_dir, method)
    if as_json:
        sys.stdout.write(answer_document(answer))
        return
    wide = _wide()
    wide.print(answer_panel(answer))
    wide.print("\n" + "  ·  ".join(f"{what}: [bold]{path}[/]" for what, path in files.items()))


@app.command()
def portfolio(
    study_files: Annotated[list[Path], typer.Argument(metavar="STUDY...", help="the programs' study files (YAML)")],
    db: DbOption = DEFAULT_DB,
    out_dir: Annotated[Path, typer.Option("--out", help="folder for portfolio.json and portfolio.html")] = Path("."),
    as_json: JsonOption = False,
) -> None:
    """Several programs side by side: cost, benefit, ROI, Phillips levels reached, and keep / improve / cut."""
    from training_roi.evaluation import evaluate_portfolio
    from training_roi.present.portfolio import portfolio_document, portfolio_table, write_portfolio
    from training_roi.warehouse.connection import connect

    with _user_errors():
        _writable(out_dir)
        con = connect(db, create=False)
        with _progress() as update:
            result = evaluate_portfolio(con, study_files, progress=update)
            update("writing portfolio.json and portfolio.html", 1.0)
    path, html = write_portfolio(result, out_dir)
    if as_json:
        sys.stdout.write(portfolio_document(result))
    else:
        wide = _wide()
        wide.print(portfolio_table(result))
        wide.print(f"\nportfolio: [bold]{path}[/]  ·  page: [bold]{html}[/]")


@app.command()
def attribute(
    study_file: Annotated[Path, typer.Argument(metavar="STUDY", help="the study file (YAML)")],
    db: DbOption = DEFAULT_DB,
    out_dir: Annotated[Path, typer.Option("--out", help="folder for the attribution file")] = Path("."),
    model: Annotated[str | None, typer.Option(help=_MODEL_HELP)] = None,
    fmt: Annotated[str, typer.Option("--format", help="csv or parquet")] = "csv",
    as_json: JsonOption = False,
) -> None:
    """The attribution table alone: which touches each won deal's revenue flows through, held to the lift."""
    from training_roi.attribute import MODELS
    from training_roi.evaluation import evaluate_attribution
    from training_roi.present.attribution import FORMATS, attribution_table, write_attribution
    from training_roi.warehouse.connection import connect

    with _user_errors():
        if model is not None and model not in MODELS:
            raise TrainingRoiError(f"--model {model}: expected one of {', '.join(MODELS)}")
        if fmt not in FORMATS:
            raise TrainingRoiError(f"--format {fmt}: expected one of {', '.join(FORMATS)}")
        _writable(out_dir)
        con = connect(db, create=False)
        with _progress() as update:
            result = evaluate_attribution(con, study_file, model=model, progress=update)
            update(f"writing attribution.{fmt}", 1.0)
        path = write_attribution(result, out_dir, fmt=fmt)
    if as_json:
        sys.stdout.write(json.dumps(result.asdict(), sort_keys=True, indent=2) + "\n")
    else:
        wide = _wide()
        wide.print(attribution_table(result))
        wide.print(f"\n{result.counts['attributed_touches']:,} touches of {result.counts['attributed_deals']:,} won "
                   f"deals: [bold]{path}[/]")


@app.command()
def kpis(
    db: DbOption = DEFAULT_DB,
    names: Annotated[list[str] | None, typer.Option(
        "--kpi", help="a KPI of the catalogue (repeat); default: all")] = None,
    monthly: Annotated[bool, typer.Option("--monthly/--total", help="month by month, or over the whole period")] = True,
    months: Annotated[int, typer.Option(min=1, help="months shown in the console (the file has every one)")] = 6,
    grain: Annotated[str, typer.Option(help="org, team, rep, account or activity; at a finer grain than org every "
                                            "unit is listed by name, with '(no owner)' for deals without one")] = "org",
    basis: Annotated[str | None, typer.Option(
        help="the month deal KPIs are dated by: close (outcomes — win rate, deal size, cycle, revenue — in the month "
             "the deal closed) or created (in the month the deal was created, as the evaluation counts them); "
             "default: outcomes by close month, deals and pipeline created by creation month")] = None,
    since: Annotated[str | None, typer.Option(help="first day counted (YYYY-MM-DD)")] = None,
    until: Annotated[str | None, typer.Option(help="first day not counted (YYYY-MM-DD)")] = None,
    csat_field: Annotated[str, typer.Option(help="the Case custom field holding satisfaction (1–5)")] = "CSAT__c",
    gross_margin: Annotated[float | None, typer.Option(help="share kept of revenue, for lifetime value")] = None,
    csv: Annotated[Path | None, typer.Option(help="write every value (long format, with changes) to this CSV")] = None,
    limit: Annotated[int, typer.Option(min=1, help="units shown per KPI in the console at a finer grain")] = 20,
    as_json: JsonOption = False,
) -> None:
    """The KPI catalogue — sales, process, customer success, learning — month by month with its changes.

    Each KPI says which month its values belong to: deal outcomes (win rate, deal size, cycle, revenue) by the
    month the deal closed, deals and pipeline created by the month they were created (--basis changes the deal
    KPIs). Months still maturing are provisional (starred): the month was not over when the data ends, or, for
    outcomes by creation month, more than 20% of its deals are still open. Changes over a month and a year compare
    complete months only.
    """
    from datetime import date as _date

    import polars as pl

    from training_roi.measure import BASES, CATALOGUE, GRAINS, changes, compute, grain_names
    from training_roi.present.kpis import kpi_table
    from training_roi.warehouse.connection import connect

    with _user_errors():
        chosen = names or list(CATALOGUE)
        unknown = [n for n in chosen if n not in CATALOGUE]
        if unknown:
            raise TrainingRoiError(f"--kpi {', '.join(unknown)}: not in the catalogue ({', '.join(CATALOGUE)})")
        if grain not in GRAINS:
            raise TrainingRoiError(f"--grain {grain}: expected one of {', '.join(GRAINS)}")
        if basis is not None and basis not in BASES:
            raise TrainingRoiError(f"--basis {basis}: expected one of {', '.join(BASES)}")
        try:
            start, end = (_date.fromisoformat(d) if d else None for d in (since, until))
        except ValueError as exc:
            raise TrainingRoiError(f"--since/--until: {exc} (expected YYYY-MM-DD)") from exc
        if start is not None and end is not None and start >= end:
            raise TrainingRoiError(f"--since {start} is not before --until {end}: the period is empty")
        con = connect(db, create=False)
        with _progress() as update:
            update(f"computing {len(chosen)} KPIs", 0.0)
            frame = compute(con, chosen, monthly=monthly, since=start, until=end, grain=grain,
                            case_score_field=csat_field, gross_margin=gross_margin, basis=basis)
            frame = changes(frame) if monthly else frame
            units = grain_names(con, grain, frame["grain_id"].drop_nulls().unique().to_list())
            if grain != "org":
                frame = frame.with_columns(name=pl.col("grain_id").replace_strict(units, default=None,
                                                                                  return_dtype=pl.String))
            update("done", 1.0)
    if csv is not None:
        frame.write_csv(csv)
    if as_json:
        sys.stdout.write(frame.write_json() + "\n")
        return
    _wide().print(kpi_table(frame, chosen, monthly=monthly, months=months, grain=grain, limit=limit,
                            unit_names=units))


@app.command(name="init-study")
def init_study(
    study_file: Annotated[Path, typer.Argument(metavar="STUDY", help="where to write the starter study")],
    db: DbOption = DEFAULT_DB,
    force: Annotated[bool, typer.Option(help="overwrite an existing file")] = False,
) -> None:
    """Write a commented starter study from what is in the warehouse."""
    from training_roi.study import starter_study
    from training_roi.warehouse.connection import connect

    with _user_errors():
        if study_file.exists() and not force:
            raise TrainingRoiError(f"{study_file} exists: pass --force to overwrite it")
        text = starter_study(connect(db, create=False))
        study_file.write_text(text, encoding="utf-8")
    out.print(f"wrote {study_file}: review every setting, then run `training-roi report {study_file}`")


@app.command()
def design(
    out_file: Annotated[Path, typer.Argument(metavar="ASSIGNMENT", help="the CSV to write (unit, wave, group)")],
    db: DbOption = DEFAULT_DB,
    waves: Annotated[int, typer.Option(help="training waves")] = 2,
    holdout: Annotated[float, typer.Option(help="share of reps held out of training (0 to 1)")] = 0.2,
    strata: Annotated[str, typer.Option(help="CRM user columns to balance on, comma separated "
                                             "(a baseline win-rate band is always added)")] = "department",
    seed: Annotated[int, typer.Option(help="random seed: the same seed redraws the same assignment")] = 7,
    window_days: Annotated[int, typer.Option(help="the attribution window the study will use")] = 180,
) -> None:
    """Design a randomised rollout: reps assigned to waves and a holdout, and the lift it can detect."""
    from training_roi.evaluation import plan_rollout
    from training_roi.isolate import write_assignment
    from training_roi.warehouse.connection import connect

    with _user_errors():
        if not 0 <= holdout < 1:
            raise TrainingRoiError(f"--holdout {holdout}: expected a share from 0 to below 1")
        con = connect(db, create=False)
        plan = plan_rollout(con, waves=waves, holdout_share=holdout, strata=strata.split(","), seed=seed,
                            window_days=window_days)
        path = write_assignment(plan.assignment, out_file)
    counts = plan.assignment.group_by("wave").len().sort("wave")
    balanced = ", ".join([*plan.strata, "win-rate band"])
    out.print(f"wrote {path}: {plan.assignment.height:,} reps, seed {seed}, balanced on {balanced}")
    for r in counts.iter_rows(named=True):
        group = "holdout" if r["wave"] == 0 else f"wave {r['wave']}"
        out.print(f"  {group}: {r['len']:,} reps")
    if plan.minimum_detectable_lift is not None:
        out.print(f"With about {plan.closed_per_window:,.1f} closed deals per rep in a {window_days}-day window at "
                  f"a {plan.base_rate:.1%} win rate, and deals of one rep correlated at {plan.icc:.3f} (the last 6 "
                  f"months), this design detects a lift of {plan.minimum_detectable_lift * 100:+.1f} pts or more "
                  "(80.0% power, 5% two-sided).")


@app.command()
def schema() -> None:
    """Print the warehouse's canonical schema as Markdown (the source of docs/warehouse.md)."""
    from training_roi.warehouse.schema import markdown as schema_markdown

    sys.stdout.write(schema_markdown())


@app.command()
def demo(
    workdir: Annotated[Path, typer.Option("--dir", help="where the simulated data and warehouse go")] = Path("demo"),
    reps: Annotated[int, typer.Option(min=2)] = 300,
    months: Annotated[int, typer.Option(min=6)] = 24,
    seed: int = 7,
    scenario: str = "selection",
) -> None:
    """The main job on the embedded default: simulate an org, ingest it into DuckDB, answer a study.

    The demo study counts the simulated program's course, costs participant time at $60 an hour
    (an assumption written into demo/study.yaml) and keeps every other default.
    """
    import yaml

    from training_roi import simulate as sim
    from training_roi.present.answer import answer_panel
    from training_roi.present.console import ingest_table, link_panel, quality_panel

    data = workdir / "data"
    db = workdir / "roi.duckdb"
    with _user_errors():
        with _progress() as update:
            info = sim.simulate(data, reps=reps, months=months, seed=seed, scenario=scenario,
                                progress=lambda d, f: update(f"simulating: {d}", f))
        if db.exists():
            db.unlink()
        ingested, linked, report = _ingest(data, str(db), None, None)
        truth = json.loads((data / "truth.json").read_text(encoding="utf-8"))
        study_file = workdir / "study.yaml"
        study_file.write_text(yaml.safe_dump({
            "name": f"{truth['program']['name']} (demo)",
            "program": {"name": truth["program"]["name"], "activities": [truth["program"]["course_activity_id"]]},
            "population": {"unit": truth.get("unit", "rep")},
            # Reps' learning time is the company's cost; customers' is not.
            "costs": {"participant_time": {"hourly_rate": 60}} if truth.get("unit", "rep") == "rep" else {},
        }, sort_keys=False), encoding="utf-8")
        evaluation, files = _answer(str(db), study_file, workdir)
        study = evaluation.study
    wide = _wide()
    wide.print(ingest_table(ingested))
    wide.print(link_panel(linked))
    wide.print(quality_panel(report))
    wide.print(answer_panel(evaluation))
    true = truth["truth"]["windows"][str(study.windows.primary_days)]
    wide.print(f"\nSimulated truth ({info.scenario}): win-rate lift {true['att_win_rate'] * 100:+.1f} pts, "
               f"incremental revenue ${true['incremental_revenue']:,.0f} "
               f"in the {study.windows.primary_days}-day window.")
    wide.print(f"Warehouse: [bold]{db}[/]  ·  study: {study_file}  ·  result: {files['result']}  ·  "
               f"report: [bold]{files['report']}[/]")
    if not ingested.ok:
        raise typer.Exit(1)


def main() -> None:  # pragma: no cover - the console script entry point is `app`
    """Run the command line."""
    app()


if __name__ == "__main__":  # pragma: no cover
    main()
