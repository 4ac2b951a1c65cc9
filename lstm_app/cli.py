"""The ``lstm-pipeline`` command: one sub-command per user intent.

Every flag overrides the matching field of ``--config FILE.yaml``; the YAML mirrors the config tree.
"""
from __future__ import annotations

import functools
import inspect
import json
import sys
from pathlib import Path
from typing import Any, Optional

import typer
from rich.console import Console
from rich.table import Table

from lstm_core.config import STRATEGIES, PipelineConfig, load_config
from lstm_core.data import DataError

app = typer.Typer(add_completion=False, no_args_is_help=True,
                  help="Can an LSTM warn you of a rare event in your time series? Find out honestly, then ship it.")
# Progress, logs and errors go to stderr; the answer (results tables, verdict, model URI) to stdout, so
# `lstm-pipeline train ... > answer.txt` holds it. Piped into a file or CI log, rich would wrap at 80 columns
# and cut the metric tables; give them room.
console = Console(stderr=True, width=None if sys.stderr.isatty() else 140)
answer = Console(width=None if sys.stdout.isatty() else 140)

JsonOpt = typer.Option(False, "--json", help="Print the result as JSON on stdout (the tables go to stderr).")


def _say(result: dict, as_json: bool, show) -> None:
    """The command's answer: ``show(console)`` prints it on stdout, or with ``--json`` the result is printed
    there as JSON and the human tables go to stderr."""
    if as_json:
        show(console)
        sys.stdout.write(json.dumps(result, indent=2, default=str) + "\n")
        sys.stdout.flush()
    else:
        show(answer)

# Flag → config field. The same names in every sub-command.
FLAG_FIELDS = {
    "data": "data.path", "time_col": "data.time_col", "entity_col": "data.entity_col", "features": "data.features",
    "label_col": "data.label_col", "event_col": "data.event_col", "horizon": "data.horizon",
    "label_lookahead": "data.label_lookahead", "window": "window.length", "max_gap": "window.max_gap",
    "folds": "split.folds", "split_by": "split.by", "embargo": "split.embargo", "resample": "resample.strategy",
    "epochs": "train.epochs", "batch_size": "train.batch_size", "device": "train.device", "seed": "train.seed",
    "model_name": "register.model_name", "experiment": "register.experiment",
    "sep": "data.sep", "max_file_mb": "data.max_file_mb", "missing": "data.missing", "min_positives": "data.min_positives",
    "executor": "execution.executor", "dask_address": "execution.dask_address",
    "parallel": "tune.parallel",
}

# Every flag shared by train, compare-resampling, tune and validate, declared once: (type, typer option).
OPTIONS: dict[str, tuple[Any, Any]] = {
    "config": (Optional[Path], typer.Option(None, "--config", help="YAML file mirroring the config tree (data:, "
                                            "window:, train: ...).")),
    "data": (Optional[str], typer.Option(None, "--data", help="CSV or Parquet file.")),
    "time_col": (Optional[str], typer.Option(None, "--time-col", help="Time column (datetimes or integer steps).")),
    "entity_col": (Optional[str], typer.Option(None, "--entity-col", help="Entity column (machine, station); "
                                               "optional.")),
    "features": (Optional[str], typer.Option(None, "--features", help="Comma-separated feature columns (default: "
                                             "all other numeric).")),
    "label_col": (Optional[str], typer.Option(None, "--label-col", help="0/1 label per row (label mode).")),
    "event_col": (Optional[str], typer.Option(None, "--event-col", help="0/1 event per row (event mode, with "
                                              "--horizon).")),
    "horizon": (Optional[int], typer.Option(None, "--horizon", help="Event mode: warn this many rows ahead.")),
    "label_lookahead": (Optional[int], typer.Option(None, "--label-lookahead", help="Label mode: rows past its "
                                                    "own that a label looks at.")),
    "window": (Optional[str], typer.Option(None, "--window", help="Window length in rows, or auto (from the "
                                           "autocorrelation of the rows before the first test block).")),
    "max_gap": (Optional[str], typer.Option(None, "--max-gap", help="Drop windows spanning a larger time gap "
                                            "('2h', or steps).")),
    "sep": (Optional[str], typer.Option(None, "--sep", help="CSV delimiter (default ',').")),
    "max_file_mb": (Optional[float], typer.Option(None, "--max-file-mb", help="Refuse larger files (default "
                                                  "1024 MB).")),
    "missing": (Optional[str], typer.Option(None, "--missing", help="Missing feature values: error (default) | "
                                            "ffill | drop.")),
    "min_positives": (Optional[int], typer.Option(None, "--min-positives", help="Positive windows each fold's "
                                                  "training and test part needs.")),
    "folds": (Optional[int], typer.Option(None, "--folds", help="Walk-forward folds.")),
    "split_by": (Optional[str], typer.Option(None, "--split-by", help="time | entity")),
    "embargo": (Optional[int], typer.Option(None, "--embargo", help="Extra rows purged before each later part.")),
    "resample": (Optional[str], typer.Option(None, "--resample", help=" | ".join(STRATEGIES))),
    "epochs": (Optional[int], typer.Option(None, "--epochs")),
    "batch_size": (Optional[int], typer.Option(None, "--batch-size")),
    "device": (Optional[str], typer.Option(None, "--device", help="auto | cpu | cuda")),
    "seed": (Optional[int], typer.Option(None, "--seed")),
    "experiment": (Optional[str], typer.Option(None, "--experiment", help="MLflow experiment.")),
    "executor": (Optional[str], typer.Option(None, "--executor", help="local (default: tasks one after another) "
                                             "| dask (folds in parallel).")),
    "dask_address": (Optional[str], typer.Option(None, "--dask-address", help="With --executor dask: an existing "
                                                 "scheduler, tcp://host:8786 (default: a LocalCluster for this run).")),
}
DATA = ("config", "data", "time_col", "entity_col", "features", "label_col", "event_col", "horizon",
        "label_lookahead", "window", "max_gap", "sep", "max_file_mb", "missing", "min_positives")
SPLIT = ("folds", "split_by", "embargo")
TRAINING = ("epochs", "batch_size", "device", "seed", "experiment", "executor", "dask_address")


def with_options(*names: str):
    """Add the shared ``OPTIONS`` called ``names`` to a command, before its own parameters. The command receives
    them as one dict, ``flags``; a parameter the command declares itself (with its own help) takes precedence."""

    def wrap(fn):
        signature = inspect.signature(fn, eval_str=True)
        own = [p for p in signature.parameters.values() if p.name != "flags"]
        added = [n for n in names if n not in signature.parameters]
        extra = [inspect.Parameter(n, inspect.Parameter.KEYWORD_ONLY, default=OPTIONS[n][1],
                                   annotation=OPTIONS[n][0]) for n in added]

        @functools.wraps(fn)
        def command(**kwargs: Any) -> Any:
            return fn(**{k: v for k, v in kwargs.items() if k not in added},
                      flags={n: kwargs[n] for n in names if n in kwargs})

        del command.__wrapped__  # typer reads the signature below, not the wrapped one
        command.__signature__ = signature.replace(parameters=extra + [  # shared flags first in --help
            p.replace(kind=inspect.Parameter.KEYWORD_ONLY) for p in own])
        command.__annotations__ = {p.name: p.annotation for p in command.__signature__.parameters.values()}
        return command

    return wrap


def build_config(flags: dict[str, Any]) -> PipelineConfig:
    """The YAML file (``flags['config']``), then every other flag given on the command line on top."""
    overrides = {FLAG_FIELDS[k]: v for k, v in flags.items() if k in FLAG_FIELDS and v is not None}
    if isinstance(overrides.get("data.features"), str):
        overrides["data.features"] = [c.strip() for c in overrides["data.features"].split(",") if c.strip()]
    try:
        return load_config(flags.get("config"), overrides)
    except (ValueError, OSError) as exc:
        _fail(f"invalid configuration: {exc}")


def _fail(message: str, code: int = 2) -> None:
    console.print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)
    raise typer.Exit(code)


def _run_training(cfg: PipelineConfig, run_name: Optional[str] = None) -> dict:
    """Run the training flow with progress bars on stderr; bad input ends in a one-line error, not a traceback."""
    from lstm_app import runner

    if cfg.data.path is None:
        _fail("no data: pass --data FILE or set data.path in --config")
    return _reported(lambda: runner.run_training(cfg, console, run_name))


def _training_answer(summary: dict, cfg: PipelineConfig):
    from lstm_app import runner

    def show(out: Console) -> None:
        runner.print_window(cfg, summary["config"]["window"]["length"], out)
        runner.print_summary(summary, out)
    return show


def _write_json(path: Optional[Path], result: dict, what: str) -> None:
    """Write a command's result where --summary-json points, creating its folder; replaced atomically."""
    if path:
        from lstm_pipeline.safe_files import atomic_write

        atomic_write(path, json.dumps(result, indent=2, default=str))
        console.print(f"{what} written to {path}")


@app.command()
@with_options(*DATA, *SPLIT, "resample", *TRAINING)
def train(
    flags: dict,
    model_name: Optional[str] = typer.Option(None, "--model-name", help="Registered model name."),
    summary_json: Optional[Path] = typer.Option(None, "--summary-json", help="Write the run summary here."),
    run_name: Optional[str] = typer.Option(None, "--run-name", help="Name of the run in Prefect and MLflow "
                                           "(default: file, window, strategy and start minute)."),
    as_json: bool = JsonOpt,
) -> None:
    """Walk-forward evaluation of an LSTM against baselines on your data, then register the final model."""
    cfg = build_config({**flags, "model_name": model_name})
    summary = _run_training(cfg, run_name)
    _write_json(summary_json, summary, "summary")
    _say(summary, as_json, _training_answer(summary, cfg))


@app.command("compare-resampling")
@with_options(*DATA, *SPLIT, *TRAINING)
def compare_resampling(
    flags: dict,
    strategies: str = typer.Option("none,class_weight,smote", "--strategies",
                                   help="Comma-separated, from: " + ", ".join(STRATEGIES)),
    summary_json: Optional[Path] = typer.Option(None, "--summary-json", help="Write the comparison here."),
    run_name: Optional[str] = typer.Option(None, "--run-name", help="Name of the comparison in Prefect and MLflow "
                                           "(default: file, window and start minute)."),
    as_json: bool = JsonOpt,
) -> None:
    """Run the same walk-forward folds once per imbalance strategy and compare them with the best baseline."""
    from lstm_app import runner

    cfg = build_config(flags)
    chosen = list(dict.fromkeys(s.strip() for s in strategies.split(",") if s.strip()))
    unknown = [s for s in chosen if s not in STRATEGIES]
    if unknown or not chosen:
        _fail(f"--strategies: unknown {unknown or 'empty list'}; choose from {', '.join(STRATEGIES)}")
    if cfg.data.path is None:
        _fail("no data: pass --data FILE or set data.path in --config")
    result = _reported(lambda: runner.run_comparison(cfg, chosen, console, run_name))
    _write_json(summary_json, result, "comparison")

    def show(out: Console) -> None:
        runner.print_window(cfg, result["window_length"], out)
        runner.print_comparison(result, out)
    _say(result, as_json, show)


@app.command()
@with_options(*DATA, *SPLIT, "resample", *TRAINING)
def tune(
    flags: dict,
    window: Optional[str] = typer.Option(None, "--window", help="Window length in rows, or auto (from the "
                                         "autocorrelation); the trial 0 length, beside tune.window's choices."),
    trials: Optional[int] = typer.Option(None, "--trials", help="Trials to run (default tune.trials); the first is "
                                         "the config as given."),
    parallel: Optional[int] = typer.Option(None, "--parallel", help="Trials trained at once (tune.parallel; "
                                           "in parallel with --executor dask)."),
    out: Optional[Path] = typer.Option(None, "--out", help="Write the best config here as YAML (default: "
                                       "tuning/<run>-best.yaml under the pipeline home)."),
    seed: Optional[int] = typer.Option(None, "--seed", help="Seeds training and the TPE sampler."),
    summary_json: Optional[Path] = typer.Option(None, "--summary-json", help="Write every trial and the best here."),
    as_json: bool = JsonOpt,
) -> None:
    """Search network settings by mean validation PR-AUC over inner walk-forward folds cut before the first
    outer test block (no test window is read); write the best config as YAML for train --config."""
    from lstm_app import tuning

    cfg = build_config({**flags, "parallel": parallel})
    if cfg.data.path is None:
        _fail("no data: pass --data FILE or set data.path in --config")
    if trials is not None and trials < 1:
        _fail("--trials: give at least 1")
    result = _reported(lambda: tuning.run(cfg, trials, str(out) if out else None, console))
    _write_json(summary_json, result, "tuning summary")
    _say(result, as_json, lambda stream: tuning.print_result(result, stream))


@app.command()
@with_options(*DATA, *SPLIT)
def validate(
    flags: dict,
    window: Optional[str] = typer.Option(None, "--window", help="Window length in rows, or auto."),
    folds: Optional[int] = typer.Option(None, "--folds", help="Walk-forward folds (for the fold dry run)."),
    docs: Optional[Path] = typer.Option(None, "--docs", help="Also write GX Data Docs (HTML) into this folder."),
) -> None:
    """Run the data contract and a dry run of the folds; print the checks; exit 0 when the contract holds."""
    from dataclasses import replace

    from lstm_core.data import read_table, resolve_spec
    from lstm_pipeline.contract import fold_checks, run_contract

    cfg = build_config(flags)
    if cfg.data.path is None:
        _fail("no data: pass --data FILE or set data.path in --config")
    try:
        df = read_table(cfg.data.path, sep=cfg.data.sep, max_file_mb=cfg.data.max_file_mb)
        spec = resolve_spec(df, cfg.data)
        report = run_contract(df, spec, cfg, docs_dir=docs)
    except DataError as exc:
        _fail(str(exc))
    if report.success:  # windows and folds only mean something on data that holds its contract
        kept = tuple(f for f in spec.features if f not in report.dropped)
        cfg = _resolved_window(df, replace(spec, features=kept), cfg)
        report = report.extended(fold_checks(df, replace(spec, features=kept), cfg))
    table = Table("check", "column", "severity", "result", "observed", title=f"Data contract: {cfg.data.path}")
    style = {"FAIL": "[red]FAIL[/]", "warn": "[yellow]warn[/]", "pass": "pass"}
    for check in report.checks:
        table.add_row(check.name or check.expectation, check.column or "", check.severity, style[check.result],
                      check.observed)
    answer.print(table)
    answer.print(report.summary(), highlight=False, soft_wrap=True)
    if report.docs:
        console.print(f"Data Docs: {report.docs}", highlight=False, soft_wrap=True)
    if not report.success:
        _fail(report.message(), code=1)


def _resolved_window(df, spec, cfg: PipelineConfig) -> PipelineConfig:
    """``window: auto`` resolved once, as the training flow would, and said; a config with a number is returned
    as it is. When the rows cannot be laid out, the fold check that follows reports why."""
    if cfg.window.length != "auto":
        return cfg
    from lstm_core.autocorr import resolve_length
    from lstm_core.data import apply_missing, to_series

    try:
        rows, _ = apply_missing(df, spec, cfg.data.missing, cfg.data.ffill_limit)
        resolved, found = resolve_length(to_series(rows, spec), cfg)
    except DataError:
        return cfg
    console.print(f"window: auto → {resolved.window.length} rows (autocorrelation of {found.rows} rows, "
                  f"{found.boundary})", highlight=False, soft_wrap=True)
    return resolved


@app.command()
def score(
    data: Path = typer.Option(..., "--data", help="CSV or Parquet file of raw rows (no label or event column needed)."),
    model: Optional[str] = typer.Option(None, "--model",
                                        help="Model URI, e.g. models:/NAME@challenger or models:/NAME/3."),
    model_name: Optional[str] = typer.Option(None, "--model-name", help="Registered model name (with --alias)."),
    alias: Optional[str] = typer.Option(None, "--alias", help="Registry alias with --model-name (default champion)."),
    out: Optional[Path] = typer.Option(None, "--out", help="Output file (.parquet or .csv); default under the home."),
    experiment: Optional[str] = typer.Option(None, "--experiment", help="MLflow experiment (default NAME-scoring)."),
    as_json: bool = JsonOpt,
) -> None:
    """Score every complete window of a file with a registered model, under the contract it was trained with."""
    from lstm_app import runner
    from lstm_core.config import ScoreConfig

    if not (model or model_name):
        _fail("no model: pass --model URI or --model-name NAME (with --alias, default champion)")
    fields = {"data": str(data), "model_uri": model, "model_name": model_name, "alias": alias,
              "out": str(out) if out else None, "experiment": experiment}
    params = ScoreConfig(**{k: v for k, v in fields.items() if v is not None})
    result = _reported(lambda: runner.run_scoring(params))

    def show(out: Console) -> None:
        out.print(f"{result['windows']} windows scored with {result['model']['uri']}, "
                  f"{result['positive_predictions']} flagged; written to {result['predictions']}", soft_wrap=True)
        out.print(f"MLflow run {result['mlflow']['run_id']} ({result['mlflow']['tracking_uri']})", soft_wrap=True)
    _say(result, as_json, show)


def _reported(call):
    """Run a flow; bad input, an identical run already running on this home and an unreachable tracking server
    end in one line (exit 2), not a traceback."""
    from lstm_pipeline import tracking
    from lstm_pipeline.home_lock import RunBusy

    try:
        return call()
    except (DataError, ValueError, RunBusy) as exc:  # ContractError is a DataError
        _fail(str(exc))
    except Exception as exc:
        down = tracking.unreachable(exc)
        if down is None:
            raise
        _fail(str(down))


@app.command()
def serve(
    config: Optional[Path] = typer.Option(None, "--config", help="YAML of the training run: the deployments' defaults."),
    cron: str = typer.Option("0 2 * * *", "--cron", help="Training schedule (cron; default nightly at 02:00)."),
    score_cron: str = typer.Option("0 4 * * *", "--score-cron", help="Scoring schedule (cron; default 04:00)."),
    timezone: str = typer.Option("UTC", "--timezone", help="IANA time zone of both schedules, e.g. Europe/Berlin."),
    no_schedule: bool = typer.Option(False, "--no-schedule", help="Register both deployments without schedules."),
    score_data: Optional[str] = typer.Option(None, "--score-data", help="File the scoring deployment scores."),
    model_name: Optional[str] = typer.Option(None, "--model-name", help="Model to score with (default: the config's)."),
    alias: str = typer.Option("champion", "--alias", help="Registry alias the scoring deployment scores with."),
    limit: Optional[int] = typer.Option(None, "--limit", help="Most flow runs at once in this process."),
) -> None:
    """Serve the training and scoring flows as scheduled deployments, run from the Prefect dashboard's form."""
    from lstm_app import serve as serving
    from lstm_core.config import ScoreConfig

    cfg = build_config({"config": config})
    params = ScoreConfig(data=score_data, model_name=model_name, alias=alias)
    try:
        deployments = serving.build_deployments(cfg, params, cron, score_cron, timezone, schedule=not no_schedule)
    except serving.ServeError as exc:
        _fail(str(exc))
    for d in deployments:
        when = ", ".join(f"{s.schedule.cron} ({s.schedule.timezone})" for s in d.schedules) or "on demand only"
        console.print(f"{d.flow_name}/{d.name}: {when}", highlight=False, soft_wrap=True)
    if not no_schedule and not (cfg.data.path and params.data):
        console.print("a deployment without its data file has no schedule: set data.path in --config and "
                      "--score-data, or fill the file in the dashboard's form", highlight=False, soft_wrap=True)
    try:
        serving.serve_forever(deployments, limit)
    except serving.ServeError as exc:
        _fail(str(exc))


@app.command()
def demo(
    dataset: str = typer.Option("cmapss", "--dataset", help="cmapss (turbofans, by entity) | beijing (PM2.5, by time)."),
    epochs: Optional[int] = typer.Option(None, "--epochs", help="Epochs per fold (default: train.epochs; the "
                                         "step floor train.min_steps still applies)."),
    summary_json: Optional[Path] = typer.Option(None, "--summary-json"),
    as_json: bool = JsonOpt,
) -> None:
    """Run the whole pipeline on bundled real data; for C-MAPSS, compare with the published LSTM too."""
    from lstm_app import demo as demo_mod
    from lstm_pipeline import settings

    if dataset not in demo_mod.DATASETS:
        _fail(f"--dataset {dataset!r}: choose one of {', '.join(demo_mod.DATASETS)}")
    cfg = demo_mod.demo_config(settings.prepare_home(), epochs, dataset)
    summary = _run_training(cfg)
    if dataset == "cmapss":
        summary["published_protocol"] = demo_mod.published_protocol(summary)
    _write_json(summary_json, summary, "summary")
    training = _training_answer(summary, cfg)

    def show(out: Console) -> None:
        training(out)
        if "published_protocol" in summary:
            demo_mod.print_published(summary["published_protocol"], out)
    _say(summary, as_json, show)


def _registry_call(action):
    """Run a registry action against the configured store; refusals end in one line, exit 2."""
    from lstm_pipeline import registry, settings, tracking

    settings.prepare_home()
    try:
        return action(registry, tracking.client())
    except registry.RegistryError as exc:
        _fail(str(exc))


@app.command()
def promote(
    model_name: str = typer.Option(..., "--model-name", help="Registered model name."),
    version: int = typer.Option(..., "--version", help="Version to make 'champion' (bypasses the gate)."),
) -> None:
    """Move the 'champion' alias to a version by hand; the move is recorded for rollback."""
    _registry_call(lambda registry, client: registry.promote(client, model_name, version))
    console.print(f"{model_name}: champion → version {version} (by hand)")


@app.command()
def rollback(model_name: str = typer.Option(..., "--model-name", help="Registered model name.")) -> None:
    """Give 'champion' back to the version that held it before the current one."""
    before, after = _registry_call(lambda registry, client: registry.rollback(client, model_name))
    console.print(f"{model_name}: champion version {before} → version {after}")


def main() -> None:  # pragma: no cover - console entry point
    app(prog_name="lstm-pipeline")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
