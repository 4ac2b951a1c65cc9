"""Entry-point plumbing shared by the CLI: environment, progress bars, flow call, scoring."""
from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from lstm_core.config import PipelineConfig, ScoreConfig
from lstm_pipeline import progress, settings
from lstm_pipeline.execution import task_runner


def _quiet_console() -> None:
    # Prefect's INFO lines would tear the progress bars; they still reach the Prefect UI. MLflow's
    # download bars and its advice on pickled models say nothing a user of this command can act on.
    logging.getLogger("mlflow").setLevel(logging.ERROR)
    # each refused connection to a tracking server that is down; the command reports the outage once
    logging.getLogger("urllib3.connectionpool").setLevel(logging.ERROR)
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    os.environ.setdefault("PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL", "WARNING")
    os.environ.setdefault("PREFECT_LOGGING_HANDLERS_CONSOLE_FLOW_RUNS_LEVEL", "WARNING")
    os.environ.setdefault("PREFECT_LOGGING_HANDLERS_CONSOLE_TASK_RUNS_LEVEL", "WARNING")


class _FailedRunFilter(logging.Filter):
    """Keeps Prefect's report of a failed flow or task run off the console: the command reports the failure itself,
    as one line for bad input and with its traceback otherwise. The Prefect UI still shows it in full."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not (record.levelno >= logging.ERROR and record.name.startswith(("prefect.flow_runs", "prefect.task_runs")))


@contextmanager
def _failures_reported_once() -> Iterator[None]:
    handlers, only = logging.getLogger().handlers, _FailedRunFilter()
    for handler in handlers:
        handler.addFilter(only)
    try:
        yield
    finally:
        for handler in handlers:
            handler.removeFilter(only)


def run_training(cfg: PipelineConfig, console: Console, run_name: str | None = None) -> dict[str, Any]:
    """Run ``training_pipeline`` with a fold bar and an evaluation bar on ``console`` (the caller prints the
    answer: ``print_window`` and ``print_summary``).

    ``run_name`` names the run in Prefect and MLflow; without it the flow derives one."""
    settings.prepare_home()
    _quiet_console()
    from flows.training import training_pipeline  # imported late: Prefect reads its settings at import

    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[info]}"),
                  TimeElapsedColumn(), console=console, transient=False) as bars:
        folds = bars.add_task("folds", total=cfg.split.folds, info="")
        # one progress row per validation evaluation (train.evaluations over the step budget)
        epochs = bars.add_task("evaluations", total=cfg.train.evaluations, info="")

        def on_event(event: str, f: dict[str, Any]) -> None:
            if event == "fold":
                done = f["folds"] if f["fold"] == "final" else f["fold"] - 1
                label = "final refit" if f["fold"] == "final" else f"fold {f['fold']}/{f['folds']}"
                bars.update(folds, completed=done, info=label)
                bars.reset(epochs, total=f.get("epochs", cfg.train.evaluations), info="")
            elif event == "epoch":
                pr = f.get("val_pr_auc")
                info = ("logistic start" if f.get("step") == 0 else f"loss {f['loss']:.4f}") + (
                    f"  val PR-AUC {pr:.3f}" if pr is not None else "")
                bars.update(epochs, completed=f["epoch"], info=info)

        progress.set_reporter(on_event)
        try:
            with _failures_reported_once():
                named = {"flow_run_name": lambda: run_name} if run_name else {}
                summary = training_pipeline.with_options(task_runner=task_runner(cfg), **named)(cfg)
        finally:
            progress.set_reporter(None)
        bars.update(folds, completed=cfg.split.folds, info="done")
    return summary


def print_window(cfg: PipelineConfig, length: int, console: Console) -> None:
    """Say what ``window: auto`` resolved to (the flow's window stage resolved it once, before windowing)."""
    if cfg.window.length == "auto":
        console.print(f"window: auto → {length} rows (autocorrelation of the rows before the first test block; "
                      "plotted as plots/acf.png on the run)", highlight=False, soft_wrap=True)


def print_episode_table(episodes: dict[str, dict], console: Console) -> None:
    """The second table: episodes caught, lead time, false alarms, onset metrics (nothing without row labels)."""
    from lstm_pipeline.report import episode_table

    rows = episode_table(episodes)
    if not rows:
        return
    table = Table(title="Episodes, walk-forward (mean ± std over folds; lead: rows before the onset, negative: late)")
    columns = list(dict.fromkeys(c for r in rows for c in r))
    for col in columns:
        table.add_column(col)
    for r in rows:
        table.add_row(*(str(r.get(c, "–")) for c in columns), style="bold" if r["model"] == "lstm" else None)
    console.print(table)


def print_summary(summary: dict[str, Any], console: Console) -> None:
    table = Table(title="Test windows, walk-forward (mean ± std over folds)")
    for col in ("model", "PR-AUC", "MCC", "ROC-AUC", "F1", "Brier"):
        table.add_column(col)
    for name, v in summary["aggregate"].items():
        table.add_row(name, *(f"{v[f'{m}_mean']:.3f} ± {v[f'{m}_std']:.3f}" for m in ("pr_auc", "mcc", "roc_auc", "f1")),
                      f"{v['brier_mean']:.4f}", style="bold" if name == "lstm" else None)
    console.print(table)
    print_episode_table(summary.get("episodes") or {}, console)
    from lstm_pipeline.report import final_sentence, start_sentence, verdict

    console.print(verdict(summary, bold=""), soft_wrap=True)
    for sentence in (start_sentence(summary), final_sentence(summary)):
        if sentence:
            console.print(sentence, soft_wrap=True)
    reg = summary["registered_model"]
    console.print(f"MLflow run {summary['mlflow']['run_id']} ({summary['mlflow']['tracking_uri']})")
    if summary["mlflow"].get("run_url"):
        console.print(f"  {summary['mlflow']['run_url']}", soft_wrap=True)
    if reg.get("unchanged"):
        console.print(f"[bold]{reg['name']}[/] unchanged since version {reg['version']} (same data, config and "
                      "code): nothing registered", soft_wrap=True)
    elif reg.get("version"):
        console.print(f"registered [bold]{reg['name']}[/] version {reg['version']} as '{reg['alias']}' "
                      f"→ models:/{reg['name']}@{reg['alias']}", soft_wrap=True)
    if reg.get("gate"):
        word = "promoted to champion" if reg["gate"]["promoted"] else "not promoted to champion"
        console.print(f"gate: {word}: " + "; ".join(reg["gate"]["reasons"]), soft_wrap=True)


def run_comparison(cfg: PipelineConfig, strategies: list[str], console: Console,
                   run_name: str | None = None) -> dict[str, Any]:
    """Run ``compare_resampling`` with a (strategy, fold) bar and an epoch bar on ``console`` (the caller prints
    the answer: ``print_comparison``).

    ``run_name`` names the run in Prefect and MLflow; without it the flow derives one."""
    settings.prepare_home()
    _quiet_console()
    from flows.compare import compare_resampling  # imported late: Prefect reads its settings at import

    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[info]}"),
                  TimeElapsedColumn(), console=console, transient=False) as bars:
        runs = bars.add_task("strategy × fold", total=len(strategies) * cfg.split.folds, info="")
        epochs = bars.add_task("epochs", total=cfg.train.epochs, info="")
        started: list[int] = []

        def on_event(event: str, f: dict[str, Any]) -> None:
            if event == "fold":
                started.append(f["fold"])
                bars.update(runs, completed=len(started) - 1, info=f"{f['strategy']}, fold {f['fold']}/{f['folds']}")
                bars.reset(epochs, total=cfg.train.epochs, info="")
            elif event == "epoch":
                member = f" (network {f['member']})" if "member" in f else ""
                loss = "logistic start" if f.get("step") == 0 else f"loss {f['loss']:.4f}"
                bars.update(epochs, completed=f["epoch"], info=f"{loss}{member}")

        progress.set_reporter(on_event)
        try:
            named = {"flow_run_name": lambda: run_name} if run_name else {}
            result = compare_resampling.with_options(task_runner=task_runner(cfg), **named)(cfg, strategies)
        finally:
            progress.set_reporter(None)
        bars.update(runs, completed=len(strategies) * cfg.split.folds, info="done")
    return result


def print_comparison(result: dict[str, Any], console: Console) -> None:
    from lstm_pipeline.report import comparison_table

    rows = comparison_table(result["rows"])
    table = Table(title=f"Imbalance strategies: LSTM test windows, mean ± std over {len(result['folds'])} folds")
    for col in list(rows[0])[:-1]:  # status: failures are listed under the table instead
        table.add_column(col.replace("ΔPR-AUC", "Δ"), no_wrap=True)
    for raw, row in zip(result["rows"], rows, strict=True):
        label = row.pop("model").removeprefix("lstm + ")
        row.pop("status")
        table.add_row(label, *row.values(), style="dim" if raw["status"] == "baseline" else None)
    console.print(table)
    for raw in result["rows"]:
        if raw["status"] == "failed":
            console.print(f"[red]{raw['strategy']} did not run:[/] {raw['error']}", soft_wrap=True)
    console.print(result["verdict"], soft_wrap=True)
    console.print(f"MLflow run {result['mlflow']['run_id']} ({result['mlflow']['tracking_uri']}); nothing registered")


def load_scorer(model_uri: str):
    """A registered (or logged) scorer, from the configured MLflow store."""
    settings.prepare_home()
    _quiet_console()
    from lstm_pipeline import scoring

    return scoring.load(model_uri)[0]


def run_scoring(params: ScoreConfig) -> dict[str, Any]:
    """Run the ``batch_scoring`` flow: contract, every complete window scored, predictions written, run logged."""
    settings.prepare_home()
    _quiet_console()
    from flows.scoring import batch_scoring  # imported late: Prefect reads its settings at import

    with _failures_reported_once():
        return batch_scoring(params)
