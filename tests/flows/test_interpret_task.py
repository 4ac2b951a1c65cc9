"""The interpret task: the final model's plots land in MLflow under plots/interpret/, linked from Prefect."""
from __future__ import annotations

import urllib.request

import numpy as np
import pytest
import torch

from lstm_core.config import load_config
from lstm_core.data import resolve_spec, to_series
from lstm_core.scoring import fit_final
from lstm_core.splits import make_folds
from lstm_core.windows import make_windows, window_set
from lstm_pipeline import artifacts, tracking, workspace
from tests.conftest import make_telemetry


@pytest.fixture
def staged(home):
    """What the flow hands the task: series, folds, a final scorer and each fold's stored test scores."""
    cfg = load_config(None, {"data.time_col": "timestamp", "data.entity_col": "machine", "data.event_col": "failure",
                             "data.horizon": 3, "window.length": 6, "split.folds": 2, "model.hidden": 4,
                             "model.layers": 2, "model.pooling": "attention_dot", "train.batch_size": 64,
                             "train.device": "cpu"})
    df = make_telemetry(rows=100)
    series = to_series(df, resolve_spec(df, cfg.data))
    index = make_windows(series, 6)
    folds = make_folds(series, index, cfg.split)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # a tensor this small only waits for a second thread on a busy machine
    try:
        scorer = fit_final(series, index, cfg, epochs=1, threshold=0.5)
    finally:
        torch.set_num_threads(threads)
    fold_out = []
    for f in folds:
        y = index.y[f.test]
        scores = np.linspace(0, 1, len(y))  # ≥ 0.5 from the middle on
        fold_out.append({"k": f.k, "lstm": {"threshold": 0.5, "scores_uri": workspace.put_arrays(
            {"y": y, "lstm": scores}, "scores")}})
    return {"cfg": cfg, "series": series, "index": index, "folds": folds, "scorer": scorer,
            "args": (artifacts.put_torch(scorer, "scorer"), {"series_uri": artifacts.put_series(series, index)},
                     {"folds_uri": artifacts.put_folds(folds), "folds": [{"fold": f.k} for f in folds]}, fold_out)}


def test_traced_windows_are_the_folds_later_parts_scaled_like_the_scorer(staged) -> None:
    from tasks.interpret import fold_predictions, traced_windows

    scorer, index = staged["scorer"], staged["index"]
    x, y = traced_windows(scorer, staged["args"][1], staged["args"][2], seed=0)
    later = np.unique(np.concatenate([np.concatenate([f.val, f.test]) for f in staged["folds"]]))
    assert len(y) == min(len(later), 1000) and x.shape == (len(y), 6, 2)
    # the network on these windows scores exactly what the scorer scores on the raw ones
    raw = window_set(staged["series"].features, index, 6, later).gather()
    with torch.no_grad():
        via_scorer = scorer(torch.as_tensor(raw)).numpy()
        via_net = torch.sigmoid(scorer.network(torch.as_tensor(x, dtype=torch.float32))).numpy()
    np.testing.assert_allclose(np.sort(via_net), np.sort(via_scorer), rtol=1e-5)
    (k, yk, hits), _ = fold_predictions(staged["args"][3])
    n = len(yk)
    assert k == 1 and hits.sum() == n - np.searchsorted(np.linspace(0, 1, n), 0.5)  # scores ≥ 0.5 flagged


def test_plots_land_in_mlflow_and_prefect_links_them(staged, tracking_store, monkeypatch) -> None:
    import tasks.interpret as task_module

    published: dict[str, list] = {"markdown": [], "image": []}
    monkeypatch.setattr(task_module, "create_markdown_artifact", lambda md, **kw: published["markdown"].append((md, kw)))
    monkeypatch.setattr(task_module, "create_image_artifact", lambda url, **kw: published["image"].append((url, kw)))
    run_id = tracking.start_run(staged["cfg"].register.experiment, "interpret-test", {}, {})
    logged = task_module.interpret_final.fn(*staged["args"], run_id, staged["cfg"])
    names = {"forget_gate.png", "hidden_activity.png", "confusion_matrices.png", "attention.png"}
    assert {p.rsplit("/", 1)[1] for p in logged} == names
    client = tracking.client()
    assert {a.path for a in client.list_artifacts(run_id, "plots/interpret")} == {f"plots/interpret/{n}" for n in names}
    metrics = client.get_run(run_id).data.metrics
    assert {"LSTM/interpret/dead_units_layer_1", "LSTM/interpret/dead_units_layer_2"} <= metrics.keys()
    (markdown, kw), = published["markdown"]
    assert kw["key"] == "interpretability" and "plots/interpret/forget_gate.png" in markdown
    if tracking_store.startswith("http"):  # a server serves the image at the URL the artifact shows
        assert {kw["key"] for _, kw in published["image"]} == {"interpret-forget-gate", "interpret-attention"}
        url = published["image"][0][0]
        assert f"({url})" in markdown
        with urllib.request.urlopen(url, timeout=10) as response:
            assert response.read(8) == b"\x89PNG\r\n\x1a\n"
    else:
        assert published["image"] == []  # no server, no URL: the markdown names the artifact paths


def test_pr_curve_marks_the_pooled_operating_point(tmp_path) -> None:
    from lstm_pipeline.plots import _operating_point, pr_curves

    y = np.array([1, 1, 0, 0, 0, 1])
    hits = np.array([1, 0, 1, 1, 0, 1])  # 2 of 3 positives caught, 2 of 4 flags right
    assert _operating_point(y, hits) == (2 / 3, 0.5)
    assert _operating_point(y, np.zeros(6, int)) == (0.0, 1.0)  # nothing flagged
    scores = {"lstm": np.array([0.9, 0.2, 0.6, 0.7, 0.1, 0.8])}
    path = pr_curves(y, scores, tmp_path / "pr.png", "t", {"lstm": hits.astype(bool)})
    assert path.read_bytes()[:4] == b"\x89PNG"


def test_thin_curve_keeps_every_cell_change_and_both_ends() -> None:
    from lstm_pipeline.plots import thin_curve

    x = np.array([0.0, 0.1, 0.1, 0.1, 0.5, 0.5, 1.0])
    y = np.array([1.0, 1.0, 1.0, 0.9, 0.9, 0.9, 0.2])
    short = thin_curve(x, y, resolution=4)  # 7 points <= 2·4: nothing to thin
    assert short[0] is x and short[1] is y
    # resolution 2, cells (rint 2x, rint 2y): (0,2) (0,2) (0,2) (0,2) (1,2) (1,2) (2,0). Kept: both ends, the
    # first point of each new cell (4, 6) and the last before it (3, 5).
    kept_x, kept_y = thin_curve(x, y, resolution=2)
    np.testing.assert_array_equal(kept_x, x[[0, 3, 4, 5, 6]])
    np.testing.assert_array_equal(kept_y, y[[0, 3, 4, 5, 6]])


def test_a_large_pr_curve_is_drawn_from_a_few_thousand_points_with_its_exact_ap(tmp_path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    from sklearn.metrics import average_precision_score

    from lstm_pipeline import plots

    rng = np.random.default_rng(0)
    y = (rng.random(200_000) < 0.05).astype(np.int64)
    s = rng.random(200_000) + y * rng.random(200_000)
    drawn = {}
    real_close = plots._pyplot().close

    def keep(fig):  # read the lines before the figure is closed
        drawn["lines"] = [(line.get_label(), len(line.get_xdata())) for line in fig.axes[0].get_lines()]
        real_close(fig)

    plots._pyplot().close = keep
    try:
        plots.pr_curves(y, {"lstm": s}, tmp_path / "pr.png", "t")
    finally:
        plots._pyplot().close = real_close
    label, points = drawn["lines"][0]
    assert label == f"lstm (AP = {average_precision_score(y, s):.2f})"
    assert 10 < points < 20_000  # of about 200,000 thresholds


def test_dead_units_read_as_a_sentence():
    from tasks.interpret import _dead_sentence

    assert _dead_sentence({"layer 1": 0}) == "No hidden unit of layer 1 stayed silent on these windows."
    assert _dead_sentence({"layer 1": 0, "layer 2": 0}) == \
        "No hidden unit of layer 1 or layer 2 stayed silent on these windows."
    assert _dead_sentence({"layer 1": 3, "layer 2": 0}) == \
        "Hidden units that stayed silent on every one of these windows (dead): 3 in layer 1, none in layer 2."
