"""The search behind ``lstm-pipeline tune``: Optuna's space from ``config.tune``, trial params as config
overrides, the study, the best config as YAML, the history plot and the trials table.

Trial params are named by their dotted config field (``model.hidden``, ``train.lr``), so a trial's params are
overrides of the user's config and the best one is written back as the same YAML tree ``--config`` reads.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from lstm_core.config import ModelConfig, PipelineConfig, load_config

# (tune field, config field) of the categorical choices; a model field another version lacks is skipped
CHOICES = (("hidden", "model.hidden"), ("layers", "model.layers"), ("window", "window.length"),
           ("batch_size", "train.batch_size"), ("cell", "model.cell"), ("pooling", "model.pooling"))
RANGES = (("dropout", "model.dropout", False), ("lr", "train.lr", True))  # (tune field, config field, log scale)


def tune_run_name(config: PipelineConfig) -> str:
    """e.g. 'tune-train_FD001-w50': the data file and the window length as given ('auto' before resolving)."""
    stem = Path(config.data.path).stem if config.data.path else "data"
    return f"tune-{stem}-w{config.window.length}"


def current(config: PipelineConfig, dotted: str) -> Any:
    section, name = dotted.split(".")
    return getattr(getattr(config, section), name)


def _exists(dotted: str) -> bool:
    section, name = dotted.split(".")
    return section != "model" or name in ModelConfig.model_fields


def search_space(config: PipelineConfig) -> dict[str, Any]:
    """Optuna distributions for every tuned field; each holds the config's own value, so trial 0 fits in it.

    ``config.window.length`` must already be an integer (``window: auto`` resolved).
    """
    from optuna.distributions import CategoricalDistribution, FloatDistribution

    if config.window.length == "auto":
        raise ValueError("resolve window.length before building the search space")
    space: dict[str, Any] = {}
    for field, dotted in CHOICES:
        choices = list(getattr(config.tune, field))
        if choices and _exists(dotted):
            mine = current(config, dotted)
            space[dotted] = CategoricalDistribution(sorted(set(choices) | {mine}))
    for field, dotted, log in RANGES:
        span = getattr(config.tune, field)
        if span is not None:
            mine = float(current(config, dotted))
            space[dotted] = FloatDistribution(min(span[0], mine), max(span[1], mine), log=log)
    return space


def default_params(config: PipelineConfig, space: dict[str, Any]) -> dict[str, Any]:
    """The config's own values of the tuned fields: enqueued as trial 0, the reference every trial is
    compared with."""
    return {dotted: current(config, dotted) for dotted in space}


def new_study(config: PipelineConfig, name: str):
    """A study maximising the mean validation PR-AUC over inner folds: TPE seeded from train.seed, median
    pruning per fold,
    and the config as given enqueued as the first trial."""
    import optuna

    study = optuna.create_study(
        study_name=name, direction="maximize",
        sampler=optuna.samplers.TPESampler(seed=config.train.seed),
        pruner=optuna.pruners.MedianPruner(n_startup_trials=config.tune.prune_startup, n_warmup_steps=0))
    study.enqueue_trial(default_params(config, search_space(config)), user_attrs={"default": True})
    return study


def write_yaml(config: PipelineConfig, path: Path) -> Path:
    """The config as the YAML tree ``--config`` reads (``load_config`` gives the same config back); the file is
    replaced atomically, and only once the text reads back as the same config."""
    import tempfile

    from lstm_pipeline.safe_files import atomic_write

    text = yaml.safe_dump(config.model_dump(mode="json"), sort_keys=False)
    with tempfile.TemporaryDirectory() as tmp:
        check = Path(tmp) / path.name
        check.write_text(text, encoding="utf-8")
        if load_config(check) != config:  # a field YAML cannot carry would otherwise be lost silently
            raise ValueError(f"{path}: the written config does not read back the same")
    return atomic_write(path, text)


def history_plot(trials: list[dict[str, Any]], path: Path) -> Path:
    """Mean validation PR-AUC per trial (pruned trials at their last fold's value), the best so far, and the
    config as given (trial 0) as a line."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    fig, ax = plt.subplots(figsize=(7, 4.2))
    shown = [t for t in trials if t["value"] is not None]
    for state, marker, color in (("COMPLETE", "o", "tab:blue"), ("PRUNED", "x", "tab:grey")):
        pts = [t for t in shown if t["state"] == state]
        ax.scatter([t["number"] for t in pts], [t["value"] for t in pts], marker=marker, color=color,
                   label=f"{state.lower()} ({len(pts)})")
    best, line = float("-inf"), []
    for t in sorted(shown, key=lambda t: t["number"]):
        if t["state"] == "COMPLETE":
            best = max(best, t["value"])
        line.append((t["number"], best if best > float("-inf") else None))
    xs = [n for n, b in line if b is not None]
    ax.step(xs, [b for _, b in line if b is not None], where="post", color="tab:red", label="best so far")
    default = next((t for t in trials if t["number"] == 0 and t["state"] == "COMPLETE"), None)
    if default:
        ax.axhline(default["value"], color="black", linestyle=":", label=f"as configured {default['value']:.3f}")
    ax.set_xlabel("trial")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_ylabel("mean validation PR-AUC over inner folds")
    # below the axes: inside, the legend would hide a trial's point
    ax.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.15), ncol=4, frameon=False)
    fig.tight_layout()
    fig.savefig(path, dpi=120, bbox_inches="tight")
    plt.close(fig)
    return path


def params_text(params: dict[str, Any]) -> str:
    """'hidden=32 layers=1 window=48 dropout=0.12 lr=0.0031 …' for tables and logs."""
    out = []
    for dotted, value in params.items():
        section, name = dotted.split(".")
        shown = f"{value:.3g}" if isinstance(value, float) else str(value)
        out.append(f"{section if name == 'length' else name}={shown}")
    return " ".join(out)


def trials_table(result: dict[str, Any]) -> list[dict[str, str]]:
    """One row per trial, best first among the finished ones, for the CLI and the Prefect artifact. The episode
    columns sum the inner folds' validation windows at each fold's chosen threshold (``fit_trial_fold``)."""
    rows = []
    order = sorted(result["trials"], key=lambda t: (t["state"] != "COMPLETE", -(t["value"] or 0), t["number"]))
    for t in order:
        folds = " ".join("—" if v is None else f"{v:.3f}" for v in t["fold_values"])
        episode = t.get("episode") or {}
        caught = (f"{episode['episodes_caught_total']:.0f} / {episode['episodes_total']:.0f}"
                  if episode.get("episodes_total") else "—")
        f1 = episode.get("episode_f1_mean", float("nan"))
        rows.append({"trial": str(t["number"]) + (" (as configured)" if t["number"] == 0 else ""),
                     "state": t["state"].lower(), "val PR-AUC": "—" if t["value"] is None else f"{t['value']:.4f}",
                     "per fold": folds, "episodes caught": caught,
                     "false alarms": f"{episode['false_alarms_total']:.0f}" if "false_alarms_total" in episode else "—",
                     "episode F1": f"{f1:.3f}" if f1 == f1 else "—",
                     "params": params_text(t["params"]), "s": f"{t['seconds']:.0f}"})
    return rows
