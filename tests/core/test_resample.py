"""Imbalance strategies: exact counts and weights, marked synthetic windows, and training-part-only use."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from lstm_core.config import STRATEGIES, DataConfig, ResampleConfig, SplitConfig
from lstm_core.data import DataError, resolve_spec, to_series
from lstm_core.resample import bagging_draws, estimate_bytes, resample
from lstm_core.splits import fold_windows, make_folds, training_rows
from lstm_core.windows import WindowSet, make_windows


def eq(a, b) -> None:
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


def dense(neg: int, pos: int, seed: int = 0, length: int = 2, f: int = 2, shift: float = 5.0) -> WindowSet:
    """neg negatives (around 0) then pos positives (around ``shift``), with last_seen = 1 on every third window."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(neg + pos, length, f)).astype(np.float32)
    x[neg:] += shift
    y = np.r_[np.zeros(neg), np.ones(pos)]
    return WindowSet.from_dense(x, y, last_seen=(np.arange(neg + pos) % 3 == 0).astype(np.int8))


def test_none_returns_the_same_windows() -> None:
    ws = dense(10, 2)
    res = resample(ws, ResampleConfig(strategy="none"), seed=0)
    assert res.windows is ws and res.pos_weight is None
    assert res.info == {"strategy": "none", "negatives_before": 10, "positives_before": 2}


@pytest.mark.parametrize(("neg", "pos", "weight"), [(8, 2, 4.0), (7, 3, 7 / 3), (5, 5, 1.0)])
def test_class_weight_is_neg_over_pos(neg: int, pos: int, weight: float) -> None:
    ws = dense(neg, pos)
    res = resample(ws, ResampleConfig(strategy="class_weight"), seed=0)
    assert res.windows is ws  # windows untouched; the loss carries the weight
    assert res.pos_weight == weight  # exactly neg / pos
    assert res.info["pos_weight"] == weight


# imbalanced-learn's float rule: synthesise int(ratio · n_majority − n_minority) minority samples
@pytest.mark.parametrize(
    ("neg", "pos", "ratio", "added"),
    [
        (20, 6, 0.5, 4),  # 0.5·20 − 6 = 4
        (21, 6, 0.5, 4),  # 0.5·21 − 6 = 4.5 → int → 4 (truncated, not rounded)
        (40, 6, 1.0, 34),  # balance: 40 − 6
        (30, 6, 0.25, 1),  # 7.5 − 6 = 1.5 → 1
    ],
)
def test_smote_reaches_the_configured_ratio(neg: int, pos: int, ratio: float, added: int) -> None:
    ws = dense(neg, pos)
    res = resample(ws, ResampleConfig(strategy="smote", sampling_strategy=ratio, k_neighbors=5), seed=3)
    out = res.windows
    n = neg + pos
    assert len(out) == n + added
    assert int(out.y.sum()) == pos + added and int((out.y == 0).sum()) == neg
    assert res.pos_weight is None
    assert res.info["synthetic"] == added and res.info["positives_after"] == pos + added
    # the originals come first, unchanged, and only the appended windows are marked synthetic
    eq(out.synthetic, [False] * n + [True] * added)
    eq(out.gather()[:n], ws.gather())
    eq(out.y[:n], ws.y)
    eq(out.last_seen, np.r_[ws.last_seen, np.zeros(added, np.int8)])
    assert out.length == ws.length and out.n_features == ws.n_features
    # synthetic windows interpolate between positives: inside the positives' bounding box (all ≥ ~5 − 4σ)
    pos_x = ws.gather()[ws.y == 1]
    new = out.gather()[n:]
    assert np.all(new >= pos_x.min(axis=0) - 1e-5) and np.all(new <= pos_x.max(axis=0) + 1e-5)
    eq(out.y[n:], np.ones(added))


def test_smote_already_at_ratio_synthesises_nothing() -> None:
    ws = dense(10, 6)  # 6/10 = 0.6 ≥ 0.5
    res = resample(ws, ResampleConfig(strategy="smote", sampling_strategy=0.5, k_neighbors=5), seed=0)
    assert res.windows is ws and "nothing synthesised" in res.info["note"]


def test_smote_is_deterministic_under_a_seed() -> None:
    ws = dense(30, 8)
    cfg = ResampleConfig(strategy="smote", sampling_strategy=0.8, k_neighbors=3)
    a, b, c = resample(ws, cfg, seed=1).windows, resample(ws, cfg, seed=1).windows, resample(ws, cfg, seed=2).windows
    eq(a.rows, b.rows)
    eq(a.y, b.y)
    eq(a.synthetic, b.synthetic)
    assert a.rows.shape == c.rows.shape
    assert not np.array_equal(a.gather()[38:], c.gather()[38:])  # other seed → other synthetic windows
    eq(a.gather()[:38], c.gather()[:38])  # but the same originals


def test_smote_needs_more_positives_than_k_neighbors() -> None:
    with pytest.raises(DataError, match=r"more positive training windows than k_neighbors=5; this fold has 5"):
        resample(dense(20, 5), ResampleConfig(strategy="smote", k_neighbors=5), seed=0)
    # 6 = k + 1 is enough
    assert resample(dense(20, 6), ResampleConfig(strategy="smote", k_neighbors=5), seed=0).info["synthetic"] == 4


@pytest.mark.parametrize("strategy", [s for s in STRATEGIES if s != "none"])
def test_no_positives_is_a_clear_error(strategy: str) -> None:
    with pytest.raises(DataError, match=f"resample.strategy={strategy} needs positives.*it has none.*allow_fallback"):
        resample(dense(10, 0), ResampleConfig(strategy=strategy), seed=0)


OVER = ("random_over", "smote", "adasyn", "borderline_smote", "smote_tomek", "smote_enn")


def _as_set(x: np.ndarray) -> set[bytes]:
    return {w.tobytes() for w in x}


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_resampling_touches_the_training_part_only(strategy: str) -> None:
    rng = np.random.default_rng(5)
    n = 400
    events = (rng.random(n) < 0.15).astype(int)
    df = pd.DataFrame({"time": range(n), "a": rng.normal(size=n), "b": rng.normal(size=n), "event": events})
    s = to_series(df, resolve_spec(df, DataConfig(event_col="event", horizon=2)))
    idx = make_windows(s, 4)
    fold = make_folds(s, idx, SplitConfig(folds=2))[1]
    fw = fold_windows(s, idx, fold, 4)
    before = {p: (getattr(fw, p), getattr(fw, p).gather().copy(), getattr(fw, p).y.copy()) for p in ("val", "test")}
    rows_before = fw.train.rows.copy()
    ratio = 1.0 if strategy in OVER else None
    res = resample(fw.train, ResampleConfig(strategy=strategy, sampling_strategy=ratio, k_neighbors=3), seed=0)
    out, n_train = res.windows, len(fw.train)
    for p, (obj, x, y) in before.items():
        ws = getattr(fw, p)
        assert ws is obj  # the same WindowSet objects ...
        assert not ws.synthetic.any()  # ... with no synthetic window ...
        eq(ws.gather(), x)  # ... and unchanged values and targets
        eq(ws.y, y)
    eq(fw.train.rows, rows_before)  # the fold's scaled rows were not modified in place
    assert len(fw.train) == n_train and not fw.train.synthetic.any()
    if out.rows is fw.train.rows:  # zero copy: only training window ends over the fold's rows
        assert set(out.ends) <= set(fw.train.ends)
        assert not out.synthetic.any() or strategy == "random_over"
        return
    assert strategy in OVER and out.synthetic.sum() == res.info["synthetic"] > 0
    assert not any(np.shares_memory(getattr(fw, p).rows, out.rows) for p in ("val", "test"))
    real = out.gather()[~out.synthetic]
    assert _as_set(real) <= _as_set(fw.train.gather())  # every real window is a training window
    if "removed" not in res.info:
        eq(real, fw.train.gather())  # all of them, in order
    # only rows that (kept) training windows read are carried over, then the synthetic windows' rows
    carried = len(out.rows) - 4 * out.synthetic.sum()
    read = training_rows(fw.train.ends, 4, len(fw.train.rows)).sum()
    assert carried == read if "removed" not in res.info else carried <= read
    assert np.all(out.y[out.synthetic] == 1) and np.all(out.last_seen[out.synthetic] == 0)


# --- counts, by imbalanced-learn's rules, computed by hand ---------------------------------------------


@pytest.mark.parametrize(("neg", "pos", "ratio", "positives"), [(20, 6, 0.5, 10), (21, 6, 0.5, 10), (20, 6, 1.0, 20),
                                                                 (30, 6, 0.25, 7)])
def test_random_over_duplicates_windows_up_to_the_ratio(neg: int, pos: int, ratio: float, positives: int) -> None:
    ws = dense(neg, pos)
    out = resample(ws, ResampleConfig(strategy="random_over", sampling_strategy=ratio), seed=1).windows
    assert int(out.y.sum()) == positives and int((out.y == 0).sum()) == neg  # int(ratio · neg) positives
    eq(out.ends[:neg + pos], ws.ends)  # the originals first, unmarked ...
    eq(out.synthetic, np.arange(len(out)) >= neg + pos)  # ... then the duplicates, marked
    assert set(out.ends[neg + pos:]) <= set(ws.ends[ws.y == 1])  # duplicates of positive windows


@pytest.mark.parametrize(("neg", "pos", "ratio", "kept"), [(20, 6, 0.5, 12), (20, 6, 1.0, 6), (20, 7, 0.8, 8)])
def test_random_under_keeps_int_pos_over_ratio_negatives(neg: int, pos: int, ratio: float, kept: int) -> None:
    ws = dense(neg, pos)
    res = resample(ws, ResampleConfig(strategy="random_under", sampling_strategy=ratio), seed=1)
    out = res.windows
    assert int((out.y == 0).sum()) == kept and int(out.y.sum()) == pos  # int(7 / 0.8) = 8
    assert res.info["removed"] == neg - kept and not out.synthetic.any()
    assert len(set(out.ends)) == len(out)  # drawn without replacement


def test_random_strategies_are_zero_copy() -> None:
    ws = dense(40, 6)
    for strategy in ("random_over", "random_under"):
        out = resample(ws, ResampleConfig(strategy=strategy), seed=0).windows
        assert out.rows is ws.rows and np.shares_memory(out.rows, ws.rows)  # the very same rows
        eq(out.gather(), ws.rows[out.ends[:, None] + np.arange(-1, 1)])  # windows are ends over them


def test_default_ratio_is_half_for_over_samplers_and_balanced_for_under_samplers() -> None:
    assert ResampleConfig(strategy="smote").ratio() == 0.5
    assert ResampleConfig(strategy="random_over").ratio() == 0.5
    assert ResampleConfig(strategy="random_under").ratio() == 1.0
    assert ResampleConfig(strategy="balanced_bagging").ratio() == 1.0
    assert ResampleConfig(strategy="random_under", sampling_strategy=0.5).ratio() == 0.5


def line(positives: int = 6, far_negatives: int = 2) -> WindowSet:
    """1-step, 1-feature windows on a line: positives 100 apart, each with negatives at ±1, ±2, ±3, plus far ones.

    Every positive's 5 nearest neighbours are all negative, so ADASYN weights every positive alike (1/6 each).
    """
    values, y = [], []
    for i in range(positives):
        values += [100.0 * i] + [100.0 * i + d for d in (-3, -2, -1, 1, 2, 3)]
        y += [1] + [0] * 6
    values += [10_000.0 + j for j in range(far_negatives)]
    y += [0] * far_negatives
    return WindowSet.from_dense(np.array(values, np.float32).reshape(-1, 1, 1), np.array(y))


def test_adasyn_rounds_each_positive_share() -> None:
    ws = line()  # 6 positives, 38 negatives
    res = resample(ws, ResampleConfig(strategy="adasyn", k_neighbors=5), seed=0)
    # asked: int(0.5 · 38 − 6) = 13; each of 6 equal shares is rint(13 / 6) = rint(2.17) = 2, so 12 are made
    assert res.info["synthetic"] == 12 and res.info["positives_after"] == 18
    new = res.windows.gather()[res.windows.synthetic].ravel()
    assert np.all((new >= 0) & (new <= 500))  # interpolated between positives (at 0, 100, ..., 500)


def test_adasyn_with_nothing_to_generate_explains_itself() -> None:
    # ratio 0.22 asks for int(0.22 · 38 − 6) = 2 windows; each share rint(2 / 6) = 0
    cfg = ResampleConfig(strategy="adasyn", sampling_strategy=0.22)
    with pytest.raises(DataError, match=r"ADASYN would synthesise no window.*2 windows.*6 positive.*rounds to 0"):
        resample(line(), cfg, seed=0)
    res = resample(line(), cfg.model_copy(update={"allow_fallback": True}), seed=0)
    assert res.info["strategy"] == "class_weight" and res.info["fallback_from"] == "adasyn"
    assert res.pos_weight == 38 / 6 and "rounds to 0" in res.info["note"]


def test_adasyn_without_negative_neighbours_explains_itself() -> None:
    with pytest.raises(DataError, match="ADASYN found no negative window among the 5 nearest neighbours"):
        resample(dense(20, 6), ResampleConfig(strategy="adasyn"), seed=0)  # positives far from negatives


def test_borderline_smote_synthesises_only_near_the_border() -> None:
    far = resample(dense(40, 8), ResampleConfig(strategy="borderline_smote", k_neighbors=3), seed=0)
    assert far.info["synthetic"] == 0 and "near the border" in far.info["note"]
    near = resample(dense(40, 8, shift=1.0), ResampleConfig(strategy="borderline_smote", k_neighbors=3), seed=0)
    assert near.info["synthetic"] == int(0.5 * 40 - 8) == 12


@pytest.mark.parametrize("strategy", ["smote", "smote_tomek", "smote_enn"])
def test_smote_family_matches_imbalanced_learn_on_every_window(strategy: str) -> None:
    """The same windows as imbalanced-learn on the whole flattened training part (SMOTE reads positives only)."""
    from imblearn.combine import SMOTEENN, SMOTETomek
    from imblearn.over_sampling import SMOTE

    ws = dense(60, 12, shift=1.5)
    flat = ws.gather().reshape(len(ws), -1)
    oracle = {"smote": SMOTE, "smote_tomek": SMOTETomek, "smote_enn": SMOTEENN}[strategy]
    x_ref, y_ref = oracle(sampling_strategy=0.5, random_state=4).fit_resample(flat, ws.y)
    res = resample(ws, ResampleConfig(strategy=strategy), seed=4)
    got = res.windows.gather().reshape(len(res.windows), -1)
    assert len(got) == len(x_ref) and int(res.windows.y.sum()) == int(y_ref.sum())
    eq(np.sort(got, axis=0), np.sort(x_ref, axis=0))
    if strategy == "smote":
        assert res.info["sampler_windows"] == 12 + 1  # the positives and one negative for company
    else:
        kept_originals = len(got) - int(res.windows.synthetic.sum())
        assert res.info["sampler_windows"] == 72 and res.info.get("removed", 0) == 72 - kept_originals


@pytest.mark.parametrize("strategy", ["random_over", "random_under", "smote", "adasyn", "borderline_smote",
                                      "smote_tomek", "smote_enn"])
def test_every_strategy_is_deterministic_under_a_seed(strategy: str) -> None:
    ws = dense(60, 12, shift=1.0)
    cfg = ResampleConfig(strategy=strategy, k_neighbors=3)
    a, b, c = (resample(ws, cfg, seed=s).windows for s in (7, 7, 8))
    eq(a.gather(), b.gather())
    eq(a.y, b.y)
    eq(a.synthetic, b.synthetic)
    assert len(a) != len(c) or not np.array_equal(a.gather(), c.gather())  # another seed, other draws


def test_bagging_draws_take_every_positive_and_their_own_negatives() -> None:
    ws = dense(50, 6)
    cfg = ResampleConfig(strategy="balanced_bagging", bagging_estimators=3)
    draws = bagging_draws(ws.y, cfg, seed=0)
    assert len(draws) == 3
    for d in draws:
        assert set(np.flatnonzero(ws.y == 1)) <= set(d)
        assert int((ws.y[d] == 0).sum()) == 6  # int(6 / 1.0): balanced
    assert len({tuple(d) for d in draws}) == 3  # seed, seed + 1, seed + 2: three different draws
    eq(np.concatenate(draws), np.concatenate(bagging_draws(ws.y, cfg, seed=0)))
    half = bagging_draws(ws.y, cfg.model_copy(update={"sampling_strategy": 0.5}), seed=0)
    assert all(int((ws.y[d] == 0).sum()) == 12 for d in half)  # int(6 / 0.5)
    res = resample(ws, cfg, seed=0)
    assert res.windows is ws and res.info["members"] == 3 and res.info["negatives_per_member"] == 6


# --- edge cases -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("strategy", ["smote", "adasyn", "borderline_smote", "smote_tomek", "smote_enn"])
def test_too_few_positives_falls_back_only_when_allowed(strategy: str) -> None:
    ws = dense(20, 3)
    with pytest.raises(DataError, match=r"needs more positive training windows than k_neighbors=5; this fold has 3"):
        resample(ws, ResampleConfig(strategy=strategy), seed=0)
    res = resample(ws, ResampleConfig(strategy=strategy, allow_fallback=True), seed=0)
    assert res.windows is ws and res.pos_weight == 20 / 3
    assert (res.info["strategy"], res.info["fallback_from"]) == ("class_weight", strategy)


def test_no_positives_falls_back_to_none_when_allowed() -> None:
    ws = dense(10, 0)
    res = resample(ws, ResampleConfig(strategy="smote", allow_fallback=True), seed=0)
    assert res.windows is ws and res.pos_weight is None
    assert (res.info["strategy"], res.info["fallback_from"]) == ("none", "smote")


def test_positives_as_the_majority_are_left_alone() -> None:
    ws = dense(5, 10)
    for strategy in ("random_over", "random_under", "smote"):
        res = resample(ws, ResampleConfig(strategy=strategy), seed=0)
        assert res.windows is ws and "not the minority" in res.info["note"]


# --- memory ---------------------------------------------------------------------------------------------


def test_estimate_counts_input_output_and_neighbours() -> None:
    # 3 · 100 input-sized copies + 5 · 40 synthetic-sized, 2·3·4 bytes a window; 16 bytes · (5 + 1) per input window
    assert estimate_bytes(100, 40, 2, 3, 5) == 24 * (300 + 200) + 96 * 100


def test_smote_makes_big_outputs_in_batches(monkeypatch: pytest.MonkeyPatch) -> None:
    from imblearn.over_sampling import SMOTE

    import lstm_core.resample as mod

    calls: list[int] = []
    real = SMOTE.fit_resample
    monkeypatch.setattr(SMOTE, "fit_resample", lambda self, x, y: calls.append(self.sampling_strategy[1]) or real(self, x, y))
    monkeypatch.setattr(mod, "SMOTE_BATCH_BYTES", 48)  # 3 windows of 2·2·4 bytes per call
    ws = dense(40, 6)
    a = resample(ws, ResampleConfig(strategy="smote", k_neighbors=3), seed=2)
    b = resample(ws, ResampleConfig(strategy="smote", k_neighbors=3), seed=2)
    # int(0.5 · 40 − 6) = 14 windows: calls asking for 6 + 3, 6 + 3, 6 + 3, 6 + 3 and 6 + 2 positives
    assert calls == [9, 9, 9, 9, 8] * 2
    assert a.info["synthetic"] == 14 and a.info["positives_after"] == 20
    eq(a.windows.gather(), b.windows.gather())  # one random stream: deterministic
    new = a.windows.gather()[a.windows.synthetic]
    assert len({w.tobytes() for w in new}) == 14  # the batches do not repeat each other
    pos_x = ws.gather()[ws.y == 1]
    assert np.all(new >= pos_x.min(axis=0) - 1e-5) and np.all(new <= pos_x.max(axis=0) + 1e-5)
    # the estimate counts one batch's temporaries: 16 · (3 · 7 + 14 + 4 · 3) + 16 · 4 · 7 (+ the 92 rows)
    assert estimate_bytes(7, 14, 2, 2, 3, batch=3) == 16 * 47 + 448
    assert estimate_bytes(7, 14, 2, 2, 3, batch=3, rows=92) == 16 * 47 + 448 + 92 * 24


def test_over_budget_lets_a_sample_of_the_majority_into_the_sampler() -> None:
    ws = dense(200, 20, shift=1.0)  # 440 rows; 2·2·4 = 16 bytes a window; asks int(0.5 · 200 − 20) = 80 windows
    budget_mb = 30000 / 2**20
    # estimate with n negatives entering: 16 · (3 · (20 + n) + 80 + 4 · 80) + 96 · (20 + n) + 440 · (8 + 16)
    #                                      = 19840 + 144 n ≤ 30000  →  n = 70
    res = resample(ws, ResampleConfig(strategy="adasyn", memory_budget_mb=budget_mb), seed=0)
    assert res.info["majority_in_sampler"] == 70 and res.info["sampler_windows"] == 90
    assert res.info["memory_estimate_mb"] == round((19840 + 144 * 70) / 2**20, 1)
    real = res.windows.gather()[~res.windows.synthetic]
    eq(real, ws.gather())  # every original window is kept, also the 130 negatives that did not enter
    assert res.info["synthetic"] > 0


def test_over_budget_refuses_with_the_memory_needed() -> None:
    ws = dense(200, 20, shift=1.0)
    cfg = ResampleConfig(strategy="adasyn", memory_budget_mb=30000 / 2**20, over_budget="refuse")
    # everything entering: 19840 + 144 · 200 = 48640 bytes, i.e. about 1 MB once rounded up
    with pytest.raises(DataError, match=r"needs about 1 MB for 220 training windows of 2×2.*"
                                        r"Raise resample.memory_budget_mb to at least 1.*over_budget=subsample"):
        resample(ws, cfg, seed=0)
    tiny = cfg.model_copy(update={"memory_budget_mb": 1e-4, "over_budget": "subsample"})
    with pytest.raises(DataError, match="even with the fewest majority windows.*sampling_strategy"):
        resample(ws, tiny, seed=0)
