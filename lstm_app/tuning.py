"""``lstm-pipeline tune`` for a person: run the tuning flow with a line per finished trial, then print the
trials table, the best trial and its gain over the config as given (the search itself: ``lstm_pipeline.tuning``)."""
from __future__ import annotations

from typing import Any

from lstm_core.config import PipelineConfig
from lstm_pipeline.tuning import params_text, trials_table


def run(cfg: PipelineConfig, trials: int | None, out: str | None, console) -> dict[str, Any]:
    """Run ``tuning_flow`` under the configured task runner, a line per finished trial on ``console`` (the caller
    prints the answer: ``print_result``)."""
    import optuna

    from lstm_app import runner
    from lstm_pipeline import progress, settings
    from lstm_pipeline.execution import task_runner

    settings.prepare_home()
    runner._quiet_console()
    optuna.logging.set_verbosity(optuna.logging.WARNING)  # one line per trial is printed below instead
    from flows.tuning import tuning_flow  # imported late: Prefect reads its settings at import

    def on_event(event: str, f: dict[str, Any]) -> None:
        if event == "trial":
            value = "—" if f["value"] is None else f"{f['value']:.4f}"
            given = " (as configured)" if f["number"] == 0 else ""
            console.print(f"[{f['number'] + 1}/{f['trials']}] trial {f['number']}{given}: {f['state'].lower()}, validation PR-AUC {value}  "
                          f"[dim]{params_text(f['params'])}[/]", highlight=False, soft_wrap=True)

    progress.set_reporter(on_event)
    try:
        with runner._failures_reported_once():
            result = tuning_flow.with_options(task_runner=task_runner(cfg))(cfg, trials, out)
    finally:
        progress.set_reporter(None)
    return result


def print_result(result: dict[str, Any], console) -> None:
    """The trials table, the best trial and its gain over the config as given."""
    from rich.table import Table

    table = Table(title=f"Trials, best first: mean validation PR-AUC over {len(result.get('inner_folds') or [])} "
                        f"inner folds before the first outer test block (window {result['window_length']} as "
                        "configured)")
    rows = trials_table(result)
    for col in rows[0]:
        table.add_column(col, no_wrap=col != "params")
    for row in rows:
        table.add_row(*row.values(), style="bold" if row["trial"].split()[0] == str(result["best"]["number"]) else None)
    console.print(table)
    for t in result["trials"]:
        if t["state"] == "FAIL":
            console.print(f"[red]trial {t['number']} failed:[/] {t['error']}", highlight=False, soft_wrap=True)
        elif any(v is None for v in t["fold_values"]):
            console.print(f"trial {t['number']}: a fold's validation slice holds no positive window (—); its mean is "
                          "over the other folds", highlight=False, soft_wrap=True)
    best, default = result["best"], result["default"]["value"]
    gain = ("the config as given did not complete" if default is None else
            f"{result['improvement']:+.4f} over the config as given ({default:.4f})"
            if best["number"] != 0 else "the config as given is the best; nothing beat it")
    console.print(f"best: trial {best['number']}, validation PR-AUC {best['value']:.4f}; {gain}", soft_wrap=True)
    if result.get("tuned_on"):
        console.print(f"tuning read only {result['tuned_on']}", highlight=False, soft_wrap=True)
    console.print(f"best config written to {result['best_yaml']}: lstm-pipeline train --config {result['best_yaml']}",
                  highlight=False, soft_wrap=True)
    console.print(f"MLflow run {result['mlflow']['run_id']} ({result['mlflow']['tracking_uri']})", soft_wrap=True)
