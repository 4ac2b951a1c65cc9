"""Plots logged with each run, drawn with matplotlib's file backend (no display needed)."""
from __future__ import annotations

from pathlib import Path

import numpy as np


def pr_curves(y_true: np.ndarray, scores: dict[str, np.ndarray], path: Path, title: str) -> Path:
    """Precision-recall curves of every model on the same pooled test windows."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from sklearn.metrics import PrecisionRecallDisplay

    fig, ax = plt.subplots(figsize=(6.5, 5))
    # A constant score (the prior) has no curve worth drawing: the chance line is that baseline.
    drawn = {name: s for name, s in scores.items() if np.unique(s).size > 1 or name == "lstm"}
    for i, (name, s) in enumerate(drawn.items()):
        PrecisionRecallDisplay.from_predictions(y_true, s, name=name, ax=ax, plot_chance_level=i == 0,
                                                curve_kwargs={"linewidth": 2.2 if name == "lstm" else 1.4})
    ax.set_title(f"{title}\n{len(y_true)} windows, {int(np.sum(y_true))} positive")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.02)
    ax.legend(loc="lower left", fontsize=8)  # the top right is where good curves are
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def training_curves(histories: dict[int, list[dict[str, float]]], path: Path) -> Path:
    """Training loss and validation PR-AUC per epoch, one line per fold."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
    for k, rows in sorted(histories.items()):
        epochs = [r["epoch"] for r in rows]
        left.plot(epochs, [r["loss"] for r in rows], label=f"fold {k}")
        right.plot(epochs, [r.get("val_pr_auc", np.nan) for r in rows], label=f"fold {k}")
    left.set(xlabel="epoch", ylabel="training loss (BCE)", title="Training loss")
    right.set(xlabel="epoch", ylabel="PR-AUC", title="Validation PR-AUC")
    left.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def strategy_comparison(rows: list[dict], path: Path, title: str) -> Path:
    """Test PR-AUC mean ± std over folds per imbalance strategy, with the best baseline as a line."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ran = [r for r in rows if r["status"] == "ok"]
    base = next((r for r in rows if r["status"] == "baseline"), None)
    fig, ax = plt.subplots(figsize=(7, 0.45 * max(len(ran), 3) + 1.2))
    y = np.arange(len(ran))[::-1]  # the first strategy on top
    ax.errorbar([r["pr_auc_mean"] for r in ran], y, xerr=[r["pr_auc_std"] for r in ran], fmt="o", capsize=4,
                color="tab:blue", label="LSTM, mean ± std over folds")
    if base is not None:
        ax.axvline(base["pr_auc_mean"], color="tab:red", linestyle="--",
                   label=f"{base['model']} ({base['pr_auc_mean']:.3f})")
        ax.axvspan(base["pr_auc_mean"] - base["pr_auc_std"], base["pr_auc_mean"] + base["pr_auc_std"],
                   color="tab:red", alpha=0.08)
    ax.set_yticks(y, [r["strategy"] for r in ran])
    ax.set_xlabel("test PR-AUC")
    ax.set_title(title)
    ax.grid(axis="x", alpha=0.3)
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.2), ncol=2, fontsize=8, frameon=False)
    fig.tight_layout()
    fig.savefig(path, dpi=120, bbox_inches="tight")
    plt.close(fig)
    return path
