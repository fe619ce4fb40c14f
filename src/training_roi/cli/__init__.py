"""The ``training-roi`` command.

Each command is one stage of the flow (docs/architecture.md) or a convenience that chains them. Errors the
user can fix (a file, a row, a field, a key) print as one message and exit with status 2; a
source that was refused during ingest makes the command exit with status 1 after the summary.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from training_roi.cli.outputs import writable, writable_file
from training_roi.cli.printing import printed, stdout_utf8, write_printed
from training_roi.errors import TrainingRoiError
from training_roi.warehouse.target import DEFAULT_DB

# Linear algebra on one thread (read by OpenBLAS when NumPy first loads, after this): the matrices are
# small, the engine and the data frames already use every core, and with other work on the machine
# OpenBLAS's threads wait on each other (the event study's fit: 0.5 to 2.5 s on two, 0.24 s on one).
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

app = typer.Typer(
    name="training-roi",
    help="Did the training program pay off? Links LMS learning to CRM pipeline and reports ROI.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _out() -> Console:
    """The console on standard output, as wide as the terminal (or ``COLUMNS``) is now."""
    return Console()


def _err() -> Console:
    """The console on standard error, as wide as the terminal (or ``COLUMNS``) is now."""
    return Console(stderr=True)


DbOption = Annotated[str, typer.Option(
    "--db", help="warehouse: a DuckDB file, or an Ibis connection URL (duckdb://PATH, postgres://…)")]
JsonOption = Annotated[bool, typer.Option("--json", help="print the result as JSON instead of tables")]


class _Stop:
    """What a stop by Ctrl-C leaves behind, said in one line; a command updates it as its work moves on."""

    def __init__(self, line: str) -> None:
        self.line = line


_READ_ONLY = "stopped (Ctrl-C): the warehouse was not changed and no file was written"


def _writing(where: Path) -> str:
    return (f"stopped (Ctrl-C) while writing into {where}: the warehouse was not changed; the files there may be "
            "incomplete")


def _interrupted(exc: BaseException) -> bool:
    """Whether ``exc`` is a stop by Ctrl-C: Python's, or DuckDB's when the key lands inside a query."""
    import duckdb

    # A key that lands inside a query can come back wrapped: an engine's error caused by the interrupt.
    seen: BaseException | None = exc
    for _ in range(8):
        if seen is None:
            return False
        if isinstance(seen, KeyboardInterrupt | duckdb.InterruptException):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


@contextmanager
def _user_errors(stopped: str = _READ_ONLY) -> Iterator[_Stop]:
    """Turn the product's own errors into a message and exit status 2, never a traceback.

    A stop by Ctrl-C prints one line saying what the stop left behind (``stopped``, or what the
    command set on the yielded :class:`_Stop` since) and exits with status 130.
    """
    stop = _Stop(stopped)
    try:
        yield stop
    except TrainingRoiError as exc:
        # Escaped: a message quoting the user's text ("name: [unclosed") is printed as it is, not read as markup.
        _err().print(f"[red]error:[/] {escape(str(exc))}", highlight=False, soft_wrap=True)
        raise typer.Exit(2) from None
    except (KeyboardInterrupt, Exception) as exc:
        if not _interrupted(exc):
            raise
        _err().print(stop.line, highlight=False, soft_wrap=True)
        raise typer.Exit(130) from None


def _version(value: bool) -> None:
    if value:
        from training_roi import __version__

        _out().print(f"training-roi {__version__}", highlight=False)
        raise typer.Exit()


@app.callback()
def _main(version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True,
                                                help="print the version and exit")] = False) -> None:
    """Did the training program pay off? Links LMS learning to CRM pipeline and reports ROI."""


@contextmanager
def _progress(enabled: bool = True) -> Iterator[Callable[[str, float], None]]:
    """A progress bar on stderr; yields ``update(description, fraction)``."""
    err = _err()
    if not enabled or (not err.is_terminal and not sys.stderr.isatty()):
        steps: list[str] = []

        def quiet(description: str, fraction: float) -> None:
            if not steps or steps[-1] != description:
                steps.append(description)
                _err().print(f"… {description}", highlight=False)

        yield quiet
        return
    with Progress(TextColumn("{task.description:<40}"), BarColumn(), TextColumn("{task.percentage:>5.1f}%"),
                  TimeElapsedColumn(), console=err, transient=True) as bar:
        task = bar.add_task("starting", total=1.0)

        def update(description: str, fraction: float) -> None:
            bar.update(task, description=description, completed=fraction)

        yield update


def _method_help() -> str:
    # The names from a light module: importing the estimators themselves takes seconds.
    from training_roi.methods import ESTIMATOR_NAMES as METHODS

    return ("did (the study's default); all: every applicable estimator side by side, the credited value "
            f"following the recommended one; one estimator ({', '.join(METHODS)}); or dose (a micro-lesson "
            "program: the effect per lesson × the lessons each rep took); overrides isolation.method")


def _model_help() -> str:
    from training_roi.methods import ATTRIBUTION_MODELS as MODELS

    return f"{', '.join(MODELS)}; overrides attribution.model"


_METHOD_HELP = _method_help()
_MODEL_HELP = _model_help()


def _json(data: Any) -> None:
    _out().print_json(json.dumps(data, default=str))


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

    console = _out()
    if list_scenarios:
        for name, text in sim.SCENARIOS.items():
            console.print(f"[bold]{name}[/]: {text}")
        return
    with _user_errors(f"stopped (Ctrl-C): the files in {out_dir} may be incomplete; simulate again"):
        if scenario not in sim.SCENARIOS:
            raise TrainingRoiError(f"--scenario {scenario!r} is unknown; choose one of {', '.join(sim.SCENARIOS)}")
        writable(out_dir, "OUT_DIR")
        with _progress() as update:
            info = sim.simulate(out_dir, reps=reps, months=months, seed=seed, scenario=scenario, progress=update)
        console.print(str(info))


_INGEST_STOPPED = ("stopped (Ctrl-C): the sources read in full before the stop are loaded and the source being read "
                   "was discarded; run the same ingest again to load the rest and link learners")


def _ingest(data_dir: Path, db: str, mapping: str | None, links: Path | None,
            reread: bool = False) -> tuple[Any, Any, Any]:
    from training_roi.ingest.folder import ingest_folder
    from training_roi.ingest.mapping import load_mapping
    from training_roi.linking import link as run_link
    from training_roi.sync.state import mark_links
    from training_roi.warehouse.connection import connect, ensure_tables
    from training_roi.warehouse.quality import quality_report

    m = load_mapping(mapping) if mapping else None
    con = connect(db)
    ensure_tables(con)
    # Marked before the load, cleared after the links: a stop between them leaves the next sync to link.
    mark_links(con, stale=True)
    with _progress() as update:
        info = ingest_folder(data_dir, con, mapping=m, reread=reread,
                             progress=lambda what, i, n: update(f"reading {what}", i / max(n, 1)))
        update("linking learners to the CRM", 1.0)
        linked = run_link(con, explicit=links)
        mark_links(con, stale=False)
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
    reread: Annotated[bool, typer.Option("--reread", help="read every source, even one whose files are unchanged "
                                         "since they were loaded")] = False,
) -> None:
    """Load every source in DATA_DIR into the warehouse, link learners, and print the data quality.

    A source whose files are unchanged since they were loaded, into tables nothing has written since, is not
    read again (loading it would change nothing): its account is that load's.
    """
    from training_roi.present.console import ingest_notes, ingest_table, link_panel, quality_panel
    from training_roi.present.layout import fitted

    with _user_errors(_INGEST_STOPPED) as stop:
        info, linked, report = _ingest(data_dir, db, mapping, links, reread)
        stop.line = "stopped (Ctrl-C): the ingest is complete; only its summary was cut short"
        if as_json:
            _json({"ingest": info.asdict(), "link": linked.asdict(), "quality": report.asdict()})
        else:
            console = _out()
            notes = ingest_notes(info)
            parts = (ingest_table(info), *((notes,) if notes is not None else ()), link_panel(linked),
                     quality_panel(report))
            for part in parts:
                console.print(fitted(part, console.width))
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
    from training_roi.present.layout import fitted
    from training_roi.warehouse.connection import connect, require_tables

    with _user_errors("stopped (Ctrl-C): the links may be part-way; run `training-roi link` again") as stop:
        con = connect(db, create=False)
        require_tables(con, "lms_statement", "crm_user")
        info = run_link(con, explicit=links)
        stop.line = "stopped (Ctrl-C): the links are complete; only their summary was cut short"
        if as_json:
            _json(info.asdict())
        else:
            console = _out()
            console.print(fitted(link_panel(info), console.width))


@app.command()
def quality(db: DbOption = DEFAULT_DB, as_json: JsonOption = False) -> None:
    """Print the data-quality summary of the warehouse: counts, quarantine, link coverage, warnings."""
    from training_roi.present.console import quality_panel
    from training_roi.present.layout import fitted
    from training_roi.warehouse.connection import connect, require_tables
    from training_roi.warehouse.quality import quality_report

    with _user_errors():
        con = connect(db, create=False)
        require_tables(con, "ingest_run")
        report = quality_report(con)
        if as_json:
            _json(report.asdict())
        else:
            console = _out()
            console.print(fitted(quality_panel(report), console.width))


def _answer(db: str, study_file: Path, out_dir: Path, stop: _Stop,
            method: str | None = None, files_anywhere: bool = False, study: Any = None,
            stages: Any = None) -> tuple[Any, dict[str, Path]]:
    """Evaluate the study (a training program or a CRM roll-out); write every file of the answer into ``out_dir``.

    ``study`` is the study file already loaded, if it was; ``stages`` the warehouse's
    :class:`~training_roi.evaluation.stages.StageStore`, whose kept measurements the evaluation reuses.
    """
    from training_roi.cli.answers import reused
    from training_roi.evaluation import evaluate
    from training_roi.evaluation.stages import kept_stages
    from training_roi.present.answer import write_answer
    from training_roi.study import load_study
    from training_roi.warehouse.connection import connect

    writable(out_dir, "--out")
    con = connect(db, create=False)
    if study is None:
        study = load_study(study_file, allow_outside_files=files_anywhere)
    with kept_stages(stages):
        with _progress() as update:
            answer = evaluate(con, study, method=method, progress=lambda what, f: update(f"{study.name}: {what}", f))
            update("writing the answer's files", 1.0)
        if stages is not None and stages.hits:
            _err().print(reused(stages.hits, stages.misses), highlight=False, soft_wrap=True)
        stop.line = _writing(out_dir)
        return answer, write_answer(answer, out_dir)  # its charts are drawn once for the warehouse's studies


@app.command()
def report(
    study_file: Annotated[Path, typer.Argument(metavar="STUDY", help="the study file (YAML)")],
    db: DbOption = DEFAULT_DB,
    out_dir: Annotated[Path, typer.Option("--out", help="folder for result.json and report.html")] = Path("."),
    as_json: JsonOption = False,
    method: Annotated[str | None, typer.Option("--method", help=_METHOD_HELP)] = None,
    files_anywhere: Annotated[bool, typer.Option(
        "--files-outside-study",
        help="read files the study names (holdout_file) from outside the study's folder")] = False,
    fresh: Annotated[bool, typer.Option("--fresh", help="measure and evaluate again, even when the warehouse's cache "
                                        "holds this answer or its measurements; keep the new ones")] = False,
) -> None:
    """Answer a study: lift, incremental revenue, fully loaded cost and ROI, with intervals.

    An answer is kept beside a DuckDB warehouse (WAREHOUSE.answers/); the same study on the unchanged
    warehouse, by the same product, is answered from there without evaluating.
    """
    from training_roi.methods import METHOD_CHOICES

    with _user_errors() as stop:
        if method is not None and method not in METHOD_CHOICES:
            raise TrainingRoiError(f"--method {method}: expected one of {', '.join(METHOD_CHOICES)}")
        writable(out_dir, "--out")
        lookup = _answer_from_cache(db, study_file, out_dir, stop, method, files_anywhere, fresh, as_json)
        if lookup is None:
            return
        answer, files = _answer_and_keep(db, study_file, out_dir, stop, method, files_anywhere, lookup)
        stop.line = "stopped (Ctrl-C): the answer's files are written; only its summary was cut short"
        if as_json:
            from training_roi.present.answer import answer_document

            stdout_utf8(lookup.document if lookup.document is not None else answer_document(answer))
            return
        from training_roi.cli.answers import console_look
        from training_roi.present.answer import answer_panel

        console = _out()
        look = console_look(console)
        text = printed(console, answer_panel(answer, width=console.width), look)
        if look is not None and lookup.cache is not None and lookup.kept:
            lookup.cache.keep_render(lookup.key, look, text)
        console.print(_files_line(files))


def _files_line(files: dict[str, Path]) -> str:
    """The line under the answer naming its files."""
    return "\n" + "  ·  ".join(f"{what}: [bold]{path}[/]" for what, path in files.items())


@dataclass
class _Lookup:
    """What looking an answer up in the warehouse's cache found out, for the evaluation after a miss."""

    cache: Any = None
    request: Any = None
    study: Any = None
    key: str | None = None
    reads: dict[str, str] = field(default_factory=dict)
    kept: bool = False
    document: str | None = None
    """The answer's ``--json`` document, once made to be kept (not made twice)."""
    fresh: bool = False  # --fresh: every measurement is made again, none taken from the warehouse's cache


def _answer_from_cache(db: str, study_file: Path, out_dir: Path, stop: _Stop, method: str | None,
                       files_anywhere: bool, fresh: bool, as_json: bool) -> _Lookup | None:
    """Print the answer kept in the warehouse's cache and put its files into ``out_dir``; None when done so.

    Found first by the study file as given (no validation, no statistics imported), else by the key of
    the validated study. A miss returns what the look-up found out; anything wrong with an entry makes
    it a miss, never an error.
    """
    from training_roi.cli.answers import Request, answer_cache, console_look

    lookup = _Lookup(cache=answer_cache(db), fresh=fresh)
    if lookup.cache is None:
        return lookup
    lookup.request = Request.of(study_file, method, files_anywhere)
    entry = None if fresh or lookup.request is None else lookup.cache.find_request(lookup.request)
    if entry is None:
        from training_roi.study import load_study

        lookup.study = load_study(study_file, allow_outside_files=files_anywhere)
        lookup.key, lookup.reads = _key(lookup.cache, study_file, lookup.study, method)
        if Request.of(study_file, method, files_anywhere) != lookup.request:
            lookup.request = None  # the file changed while it was read: its bytes cannot stand for this study
        entry = None if fresh else lookup.cache.find(lookup.key)
        if entry is None:
            return lookup
    try:
        shown = entry.document() if as_json else entry.panel()
    except Exception:  # a damaged entry is a miss; the evaluation replaces it
        return lookup
    stop.line = _writing(out_dir)
    try:
        files = lookup.cache.put(entry, out_dir, lookup.request, lookup.reads)
    except OSError as exc:
        _err().print(f"the cached answer could not be copied ({exc}): evaluating", highlight=False, soft_wrap=True)
        return lookup
    stop.line = "stopped (Ctrl-C): the answer's files are written; only its summary was cut short"
    _err().print(entry.described(db), highlight=False, soft_wrap=True)
    if as_json:
        stdout_utf8(shown)
        return None
    console = _out()
    look = console_look(console)
    text = entry.rendered(look) if look is not None else None
    if text is None:
        from training_roi.present.layout import fitted

        text = printed(console, fitted(shown, console.width), look)
        if look is not None:
            lookup.cache.keep_render(entry.key, look, text)
    else:
        write_printed(console, text)
    console.print(_files_line(files))
    return None


def _key(cache: Any, study_file: Path, study: Any, method: str | None) -> tuple[str, dict[str, str]]:
    """The answer's key for the loaded study with ``--method`` applied (as the evaluation applies it)."""
    from training_roi.cli.answers import answer_key, study_reads

    if method is not None and method != study.isolation.method:
        study = study.model_copy(update={"isolation": study.isolation.model_copy(update={"method": method})})
    reads = study_reads(study_file, study.comparison.holdout_file)
    return answer_key(study.model_dump(mode="json"), reads, cache.version, cache.product), reads


def _answer_and_keep(db: str, study_file: Path, out_dir: Path, stop: _Stop, method: str | None,
                     files_anywhere: bool, lookup: _Lookup) -> tuple[Any, dict[str, Path]]:
    """Evaluate the study, write its files into ``out_dir`` and keep the answer in the warehouse's cache.

    A cache that cannot be written (a read-only folder) costs the answer nothing: one line says it was
    not kept. Nor is an answer kept when the warehouse changed while the study was evaluated.
    """
    from training_roi.cli.answers import warehouse_version

    cache = lookup.cache
    answer, files = _answer(db, study_file, out_dir, stop, method, files_anywhere, study=lookup.study,
                            stages=cache.stages(fresh=lookup.fresh) if cache is not None else None)
    if cache is None or lookup.key is None:
        return answer, files
    stop.line = "stopped (Ctrl-C): the answer's files are written; it was not kept in the cache"
    try:
        if warehouse_version(cache.file) != cache.version:
            raise OSError(f"{db} changed while the study was evaluated")
        from training_roi.present.answer import answer_document, answer_panel

        lookup.document = answer_document(answer)
        cache.store(lookup.key, files, out_dir, answer_panel(answer), lookup.document, lookup.request, lookup.reads)
        lookup.kept = True
    except Exception as exc:  # keeping the answer is a convenience: its failure never fails the report
        _err().print(f"the answer was not kept in the cache: {exc}", highlight=False, soft_wrap=True)
    return answer, files


@app.command()
def portfolio(
    study_files: Annotated[list[Path], typer.Argument(metavar="STUDY...", help="the programs' study files (YAML)")],
    db: DbOption = DEFAULT_DB,
    out_dir: Annotated[Path, typer.Option("--out", help="folder for portfolio.json and portfolio.html")] = Path("."),
    as_json: JsonOption = False,
) -> None:
    """Several programs side by side: cost, benefit, ROI, Phillips levels reached, and keep / improve / cut."""
    from training_roi.cli.answers import stages_of
    from training_roi.evaluation import evaluate_portfolio
    from training_roi.evaluation.stages import kept_stages
    from training_roi.present.layout import fitted
    from training_roi.present.portfolio import portfolio_document, portfolio_table, write_portfolio
    from training_roi.warehouse.connection import connect

    with _user_errors() as stop:
        writable(out_dir, "--out")
        con = connect(db, create=False)
        with _progress() as update, kept_stages(stages_of(db)):
            result = evaluate_portfolio(con, study_files, progress=update)
            update("writing portfolio.json and portfolio.html", 1.0)
        stop.line = _writing(out_dir)
        path, html = write_portfolio(result, out_dir)
        stop.line = "stopped (Ctrl-C): portfolio.json and portfolio.html are written; only the summary was cut short"
        if as_json:
            sys.stdout.write(portfolio_document(result))
        else:
            console = _out()
            console.print(fitted(portfolio_table(result), console.width))
            console.print(f"\nportfolio: [bold]{path}[/]  ·  page: [bold]{html}[/]")


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
    from training_roi.cli.answers import stages_of
    from training_roi.evaluation import evaluate_attribution
    from training_roi.evaluation.stages import kept_stages
    from training_roi.present.attribution import FORMATS, attribution_table, write_attribution
    from training_roi.present.layout import fitted
    from training_roi.warehouse.connection import connect

    with _user_errors() as stop:
        if model is not None and model not in MODELS:
            raise TrainingRoiError(f"--model {model}: expected one of {', '.join(MODELS)}")
        if fmt not in FORMATS:
            raise TrainingRoiError(f"--format {fmt}: expected one of {', '.join(FORMATS)}")
        writable(out_dir, "--out")
        con = connect(db, create=False)
        with _progress() as update, kept_stages(stages_of(db)):
            result = evaluate_attribution(con, study_file, model=model, progress=update)
            update(f"writing attribution.{fmt}", 1.0)
        stop.line = _writing(out_dir)
        path = write_attribution(result, out_dir, fmt=fmt)
        stop.line = f"stopped (Ctrl-C): attribution.{fmt} is written; only the summary was cut short"
        if as_json:
            sys.stdout.write(json.dumps(result.asdict(), sort_keys=True, indent=2) + "\n")
            return
        console = _out()
        console.print(fitted(attribution_table(result), console.width))
        console.print(f"\n{result.counts['attributed_touches']:,} touches of {result.counts['attributed_deals']:,} "
                      f"won deals: [bold]{path}[/]")


@app.command()
def kpis(
    db: DbOption = DEFAULT_DB,
    names: Annotated[list[str] | None, typer.Option(
        "--kpi", help="a KPI of the catalogue (repeat); default: all")] = None,
    monthly: Annotated[bool, typer.Option("--monthly/--total", help="month by month, or over the whole period")] = True,
    months: Annotated[int, typer.Option(min=1, help="months shown in the console, at most (fewer when the terminal "
                                                    "is narrow; the file has every one)")] = 6,
    grain: Annotated[str, typer.Option(help="org, team, rep, account or activity; at a finer grain than org every "
                                            "unit is listed by name, with '(no owner)' for deals without one")] = "org",
    basis: Annotated[str | None, typer.Option(
        help="the month deal KPIs are dated by: close (outcomes — win rate, deal size, cycle, revenue — in the month "
             "the deal closed) or created (in the month the deal was created, as the evaluation counts them); "
             "default: outcomes by close month, deals and pipeline created by creation month")] = None,
    since: Annotated[str | None, typer.Option(help="first day counted (YYYY-MM-DD)")] = None,
    until: Annotated[str | None, typer.Option(help="first day not counted (YYYY-MM-DD)")] = None,
    as_of: Annotated[str | None, typer.Option(
        "--as-of", help="the day the export was taken (YYYY-MM-DD): months not over by then are provisional; "
                        "default: the latest date the data records")] = None,
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

    from training_roi._format import spreadsheet_safe
    from training_roi.measure import BASES, CATALOGUE, GRAINS, named_kpis
    from training_roi.present.kpis import kpi_table
    from training_roi.warehouse.connection import connect

    with _user_errors() as stop:
        chosen = names or list(CATALOGUE)
        unknown = [n for n in chosen if n not in CATALOGUE]
        if unknown:
            raise TrainingRoiError(f"--kpi {', '.join(unknown)}: not in the catalogue ({', '.join(CATALOGUE)})")
        if grain not in GRAINS:
            raise TrainingRoiError(f"--grain {grain}: expected one of {', '.join(GRAINS)}")
        if basis is not None and basis not in BASES:
            raise TrainingRoiError(f"--basis {basis}: expected one of {', '.join(BASES)}")
        try:
            start, end, taken = (_date.fromisoformat(d) if d else None for d in (since, until, as_of))
        except ValueError as exc:
            raise TrainingRoiError(f"--since/--until/--as-of: {exc} (expected YYYY-MM-DD)") from exc
        if csv is not None:
            writable_file(csv, "--csv")
        if start is not None and end is not None and start >= end:
            raise TrainingRoiError(f"--since {start} is not before --until {end}: the period is empty")
        con = connect(db, create=False)
        with _progress() as update:
            update(f"computing {len(chosen)} KPIs", 0.0)
            frame, units = named_kpis(con, chosen, monthly=monthly, since=start, until=end, grain=grain,
                                      case_score_field=csat_field, gross_margin=gross_margin, basis=basis,
                                      as_of=taken)
            update("done", 1.0)
        if csv is not None:
            stop.line = (f"stopped (Ctrl-C) while writing {csv}: the warehouse was not changed; the file may be "
                         "incomplete")
            csv.parent.mkdir(parents=True, exist_ok=True)
            spreadsheet_safe(frame).write_csv(csv)
            stop.line = f"stopped (Ctrl-C): {csv} is written; only the table was cut short"
        if as_json:
            sys.stdout.write(frame.write_json() + "\n")
            return
        console = _out()
        console.print(kpi_table(frame, chosen, monthly=monthly, months=months, grain=grain, limit=limit,
                                unit_names=units, width=console.width))


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
        writable_file(study_file, "STUDY")
        text = starter_study(connect(db, create=False))
        study_file.parent.mkdir(parents=True, exist_ok=True)
        study_file.write_text(text, encoding="utf-8")
        _out().print(f"wrote {study_file}: review every setting, then run `training-roi report {study_file}`")


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

    with _user_errors() as stop:
        if not 0 <= holdout < 1:
            raise TrainingRoiError(f"--holdout {holdout}: expected a share from 0 to below 1")
        writable_file(out_file, "ASSIGNMENT")
        con = connect(db, create=False)
        plan = plan_rollout(con, waves=waves, holdout_share=holdout, strata=strata.split(","), seed=seed,
                            window_days=window_days)
        stop.line = _writing(out_file.parent)
        path = write_assignment(plan.assignment, out_file)
        stop.line = f"stopped (Ctrl-C): {path} is written; only the summary was cut short"
        counts = plan.assignment.group_by("wave").len().sort("wave")
        balanced = ", ".join([*plan.strata, "win-rate band"])
        console = _out()
        console.print(f"wrote {path}: {plan.assignment.height:,} reps, seed {seed}, balanced on {balanced}")
        for r in counts.iter_rows(named=True):
            group = "holdout" if r["wave"] == 0 else f"wave {r['wave']}"
            console.print(f"  {group}: {r['len']:,} reps")
        if plan.minimum_detectable_lift is not None:
            lift = plan.minimum_detectable_lift * 100
            console.print(f"With about {plan.closed_per_window:,.1f} closed deals per rep in a {window_days}-day "
                          f"window at a {plan.base_rate:.1%} win rate, and deals of one rep correlated at "
                          f"{plan.icc:.3f} (the last 6 months), this design detects a lift of {lift:+.1f} pts or more "
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
    serve_after: Annotated[bool, typer.Option(
        "--serve", help="then start the dashboard on http://127.0.0.1:8000 with the demo's study (Ctrl-C stops); "
                        "the user 'demo' (analyst) gets a new password, printed once")] = False,
    port: Annotated[int, typer.Option(min=1, max=65535, help="the dashboard's port, with --serve")] = 8000,
) -> None:
    """The main job on the embedded default: simulate an org, ingest it into DuckDB, answer a study.

    The demo study counts the simulated program's course, costs participant time at $60 an hour
    (an assumption written into demo/study.yaml) and keeps every other default. With --serve the
    dashboard then shows it.
    """
    import yaml

    from training_roi import simulate as sim
    from training_roi.present.answer import answer_panel
    from training_roi.present.console import ingest_table, link_panel, quality_panel
    from training_roi.present.layout import fitted

    data = workdir / "data"
    db = workdir / "roi.duckdb"
    with _user_errors(f"stopped (Ctrl-C): {workdir} may hold an unfinished demo; run the demo again") as stop:
        writable(workdir, "--dir")
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
        evaluation, files = _answer(str(db), study_file, workdir, stop)
        study = evaluation.study
        stop.line = f"stopped (Ctrl-C): the demo in {workdir} is complete; only its summary was cut short"
        console = _out()
        for part in (ingest_table(ingested), link_panel(linked), quality_panel(report)):
            console.print(fitted(part, console.width))
        console.print(answer_panel(evaluation, width=console.width))
        true = truth["truth"]["windows"][str(study.windows.primary_days)]
        console.print(f"\nSimulated truth ({info.scenario}): win-rate lift {true['att_win_rate'] * 100:+.1f} pts, "
                      f"incremental revenue ${true['incremental_revenue']:,.0f} "
                      f"in the {study.windows.primary_days}-day window.")
        console.print(f"Warehouse: [bold]{db}[/]  ·  study: {study_file}  ·  result: {files['result']}  ·  "
                      f"report: [bold]{files['report']}[/]  ·  one-pager: {files['summary']} "
                      f"({files['summary pdf'].name})  ·  workbook: {files['workbook']}")
    if not ingested.ok:
        raise typer.Exit(1)
    if serve_after:
        from training_roi.cli.server import serve_demo

        serve_demo(db, workdir, port)


def main() -> None:  # pragma: no cover - the console script entry point is `app`
    """Run the command line."""
    app()


from training_roi.cli import push, server, sync  # noqa: E402,F401 - registers `serve`, `users`, `sync` and `push`
