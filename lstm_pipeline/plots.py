"""Plots logged with each run, drawn with matplotlib's file backend (no display needed)."""
from __future__ import annotations

from pathlib import Path

import numpy as np


def pr_curves(y_true: np.ndarray, scores: dict[str, np.ndarray], path: Path, title: str,
              predicted: dict[str, np.ndarray] | None = None) -> Path:
    """Precision-recall curves of every model on the same pooled test windows.

    ``predicted`` (model -> 0/1 per window, each fold at its own validation threshold) marks where a model
    actually operates: its pooled recall and precision.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from sklearn.metrics import PrecisionRecallDisplay, average_precision_score, precision_recall_curve

    fig, ax = plt.subplots(figsize=(6.5, 5))
    # A constant score (the prior) has no curve worth drawing: the chance line is that baseline.
    drawn = {name: s for name, s in scores.items() if np.unique(s).size > 1 or name == "lstm"}
    prevalence = float(np.mean(y_true)) if len(y_true) else 0.0
    for i, (name, s) in enumerate(drawn.items()):
        precision, recall, _ = precision_recall_curve(y_true, s)
        recall, precision = thin_curve(recall, precision)
        PrecisionRecallDisplay(precision, recall, average_precision=average_precision_score(y_true, s), name=name,
                               pos_label=1, prevalence_pos_label=prevalence).plot(
            ax=ax, plot_chance_level=i == 0, curve_kwargs={"linewidth": 2.2 if name == "lstm" else 1.4})
    flat = [name for name in scores if name not in drawn]
    if flat:  # listed, so every model is accounted for on the plot
        ax.plot([], [], linestyle="none", label=f"{', '.join(flat)}: one constant score, on the chance line")
    for name, hits in (predicted or {}).items():
        recall, precision = _operating_point(y_true, hits)
        ax.plot(recall, precision, marker="o", markersize=9, markerfacecolor="none", markeredgewidth=2,
                linestyle="none", color="black", label=f"{name} at its thresholds (R {recall:.2f}, P {precision:.2f})")
    ax.set_title(f"{title}\n{len(y_true)} windows, {int(np.sum(y_true))} positive")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.02)
    # below the axes: inside, the legend would hide a poor model's curve and its operating point
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.13), ncol=2, fontsize=8, frameon=False)
    fig.tight_layout()
    fig.savefig(path, dpi=120, bbox_inches="tight")
    plt.close(fig)
    return path


def thin_curve(x: np.ndarray, y: np.ndarray, resolution: int = 2000) -> tuple[np.ndarray, np.ndarray]:
    """The points of a curve in [0, 1]² where it enters or leaves a cell of a ``resolution``² grid.

    Over millions of test windows a PR curve has millions of thresholds; at figure size a few thousand points
    draw the same picture (every kept point is exact, each step's corners stay within 1/``resolution``), and
    matplotlib no longer spends a minute on paths nobody can see.
    """
    if len(x) <= 2 * resolution:
        return x, y
    cells = np.rint(x * resolution).astype(np.int64) * (resolution + 1) + np.rint(y * resolution).astype(np.int64)
    moves = np.flatnonzero(np.diff(cells)) + 1  # first point in a new cell
    keep = np.unique(np.concatenate(([0, len(x) - 1], moves, moves - 1)))  # and the last point before it
    return x[keep], y[keep]


def _operating_point(y_true: np.ndarray, hits: np.ndarray) -> tuple[float, float]:
    """(recall, precision) of 0/1 predictions; precision is 1 by convention when nothing is flagged."""
    tp = float(np.sum((hits == 1) & (y_true == 1)))
    flagged, positives = float(np.sum(hits == 1)), float(np.sum(y_true == 1))
    return (tp / positives if positives else 0.0), (tp / flagged if flagged else 1.0)


def training_curves(histories: dict[int, list[dict[str, float]]], path: Path) -> Path:
    """Training loss and validation PR-AUC per epoch, one line per fold."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
    for k, rows in sorted(histories.items()):
        epochs = [r["epoch"] for r in rows]
        left.plot(epochs, [r.get("loss", np.nan) for r in rows], label=f"fold {k}")  # evaluation 0: no loss
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


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    _pyplot().close(fig)
    return path


def gate_by_step(profile: dict[str, dict[str, np.ndarray]], gate_name: str, path: Path) -> Path:
    """Mean gate value at each step of the window, one panel per layer, positive against negative windows."""
    plt = _pyplot()
    fig, axes = plt.subplots(1, len(profile), figsize=(4.2 * len(profile), 3.6), squeeze=False, sharey=True)
    for ax, (layer, by_class) in zip(axes[0], profile.items(), strict=True):
        for cls, color in (("positive", "tab:red"), ("negative", "tab:blue")):
            if cls in by_class:
                steps = np.arange(-len(by_class[cls]) + 1, 1)  # 0 is the window's last row
                ax.plot(steps, by_class[cls], color=color, label=f"{cls} windows")
        ax.set(title=layer, xlabel="step (0 = the window's last row)")
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel(f"mean {gate_name} gate")
    axes[0][0].legend(fontsize=8)
    fig.suptitle(f"{gate_name.capitalize()} gate over the window (1 keeps the previous state)", fontsize=10)
    return _save(fig, path)


def unit_activity(activity: dict[str, np.ndarray], dead: dict[str, int], path: Path) -> Path:
    """Histogram of each hidden unit's mean |h|, one panel per layer, the dead units counted in the title."""
    plt = _pyplot()
    fig, axes = plt.subplots(1, len(activity), figsize=(4.2 * len(activity), 3.4), squeeze=False)
    for ax, (layer, values) in zip(axes[0], activity.items(), strict=True):
        ax.hist(values, bins=min(30, max(5, len(values) // 2)), color="tab:gray", edgecolor="white")
        ax.set(title=f"{layer}: {dead[layer]} of {len(values)} units dead", xlabel="mean |h| over windows and steps",
               ylabel="units")
        ax.yaxis.get_major_locator().set_params(integer=True)
    return _save(fig, path)


def attention(weights: np.ndarray, y: np.ndarray, path: Path) -> Path:
    """Attention weights over the steps of sample windows, one row per window, its target on the left."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7, 0.35 * len(weights) + 1.6))
    order = np.argsort(-y, kind="stable")  # positives on top
    image = ax.imshow(weights[order], aspect="auto", cmap="viridis",
                      extent=(-weights.shape[1] + 0.5, 0.5, len(weights) - 0.5, -0.5))
    ax.set_yticks(np.arange(len(weights)), [f"target {int(v)}" for v in y[order]], fontsize=8)
    ax.set(xlabel="step (0 = the window's last row)", title="Attention weights of sample windows")
    fig.colorbar(image, ax=ax, label="weight")
    return _save(fig, path)


def confusion_matrices(folds: list[tuple[int, np.ndarray, np.ndarray]], path: Path) -> Path:
    """One confusion matrix per fold: (k, targets, 0/1 predictions at the fold's threshold) on test windows."""
    from sklearn.metrics import ConfusionMatrixDisplay

    plt = _pyplot()
    fig, axes = plt.subplots(1, len(folds), figsize=(3.3 * len(folds), 3.2), squeeze=False)
    for ax, (k, y, hits) in zip(axes[0], folds, strict=True):
        ConfusionMatrixDisplay.from_predictions(y, hits, labels=[0, 1], ax=ax, colorbar=False, cmap="Blues")
        ax.set_title(f"fold {k}: {len(y)} test windows", fontsize=9)
    return _save(fig, path)
