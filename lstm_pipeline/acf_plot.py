"""How ``window: auto`` chose its length: the ACF plot and what the run records about the choice."""
from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np

from lstm_core.autocorr import AcfSuggestion
from lstm_pipeline import tracking

MAX_DRAWN = 8  # features drawn one by one; more would be a hairball (their median lag is still marked)


def acf_plot(found: AcfSuggestion, path: Path) -> Path:
    """The target's and the features' pooled ACF, the 95% band and the chosen lag."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    lags = np.arange(found.acf.shape[0])
    fig, ax = plt.subplots(figsize=(7.5, 4.5))
    ax.axhspan(-found.band, found.band, color="tab:blue", alpha=0.15, label=f"95% band ±{found.band:.3f}")
    for i, (name, lag) in enumerate(zip(found.names, found.lags, strict=True)):
        if i > MAX_DRAWN:
            break
        target = i == 0 and found.has_target
        ax.plot(lags, found.acf[:, i], linewidth=2.2 if target else 1.0, color="black" if target else None,
                label=f"{name} (lag {lag})" + (" — target" if target else ""))
    ax.axvline(found.length, color="tab:red", linestyle="--",
               label=f"window = {found.length}" + (f" (clipped from {found.raw})" if found.raw != found.length else ""))
    ax.axhline(0, color="grey", linewidth=0.6)
    ax.set_xlabel("lag (rows)")
    ax.set_ylabel("autocorrelation, pooled over entities")
    ax.set_title(f"window: auto on {found.rows} rows ({found.boundary})", fontsize=10)
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.15), ncol=3, fontsize=8, frameon=False)
    fig.tight_layout()
    fig.savefig(path, dpi=120, bbox_inches="tight")
    plt.close(fig)
    return path


def log_window_choice(run_id: str, length: int, found: AcfSuggestion | None) -> None:
    """Record the integer window length every later stage uses; for 'auto' also the ACF and its plot, and
    the run's name gets the length in place of 'auto'."""
    tracking.log_params(run_id, {"window.length_resolved": length, **(found.params() if found else {})})
    if found is None:
        return
    with tempfile.TemporaryDirectory() as tmp:
        tracking.log_file(run_id, acf_plot(found, Path(tmp) / "acf.png"), "plots")
    name = tracking.client().get_run(run_id).info.run_name or ""
    if "-wauto" in name:
        tracking.set_tags(run_id, {"mlflow.runName": name.replace("-wauto", f"-w{length}")})
