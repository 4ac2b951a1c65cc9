"""Baselines: hand-computed summary features, the shared protocol, and learning a planted pattern."""

from __future__ import annotations

import numpy as np
import pytest

from lstm_core.baselines import (
    BASELINES,
    HistGBBaseline,
    LogisticBaseline,
    PersistenceBaseline,
    PriorBaseline,
    SummaryCache,
    WindowModel,
    make_baseline,
    stratified_sample,
    summary_feature_names,
    summary_features,
)
from lstm_core.metrics import score_metrics
from lstm_core.windows import WindowSet


def test_summary_features_of_one_window_by_hand() -> None:
    ws = WindowSet.from_dense(np.array([[[1.0], [2.0], [4.0]]]), y=[1])  # (1, L=3, F=1)
    feats = summary_features(ws)
    # centred steps (-1, 0, 1): slope = (-1·1 + 0·2 + 1·4) / 2 = 1.5
    std = np.sqrt(((1 - 7 / 3) ** 2 + (2 - 7 / 3) ** 2 + (4 - 7 / 3) ** 2) / 3)
    np.testing.assert_allclose(feats, [[4.0, 7 / 3, std, 1.0, 4.0, 1.5]])


def test_summary_columns_are_stat_major() -> None:
    # feature a rises 0,1,2 and feature b is constant 5
    x = np.array([[[0.0, 5.0], [1.0, 5.0], [2.0, 5.0]]])
    feats = summary_features(WindowSet.from_dense(x, y=[0]))
    names = summary_feature_names(["a", "b"])
    assert names[:3] == ["a__last", "b__last", "a__mean"] and names[-1] == "b__slope"
    got = dict(zip(names, feats[0], strict=True))
    assert got["a__last"] == 2.0 and got["b__last"] == 5.0
    assert got["a__slope"] == pytest.approx(1.0) and got["b__slope"] == 0.0 and got["b__std"] == 0.0


def test_one_step_windows_have_zero_slope() -> None:
    feats = summary_features(WindowSet.from_dense(np.array([[[3.0]], [[7.0]]]), y=[0, 1]))
    np.testing.assert_array_equal(feats[:, 5], [0.0, 0.0])
    np.testing.assert_array_equal(feats[:, 0], [3.0, 7.0])


def test_chunking_does_not_change_features() -> None:
    rng = np.random.default_rng(1)
    ws = WindowSet.from_dense(rng.normal(size=(37, 5, 3)), y=np.zeros(37))
    whole = summary_features(ws)
    assert whole.shape == (37, 18)
    np.testing.assert_array_equal(summary_features(ws, chunk=1), whole)
    np.testing.assert_array_equal(summary_features(ws, chunk=10), whole)
    assert summary_features(ws.subset(np.array([], dtype=np.int64))).shape == (0, 18)


def test_prior_predicts_the_training_rate() -> None:
    train = WindowSet.from_dense(np.zeros((4, 2, 1)), y=[0, 1, 0, 0])
    test = WindowSet.from_dense(np.ones((3, 2, 1)), y=[1, 1, 1])
    proba = PriorBaseline().fit(train).predict_proba(test)
    assert proba.dtype == np.float64
    np.testing.assert_array_equal(proba, [0.25, 0.25, 0.25])


def test_persistence_returns_last_seen() -> None:
    ws = WindowSet.from_dense(np.zeros((4, 2, 1)), y=[0, 0, 1, 1], last_seen=[1, 0, 0, 1])
    model = PersistenceBaseline()
    assert model.fit(ws) is model
    proba = model.predict_proba(ws)
    assert proba.dtype == np.float64
    np.testing.assert_array_equal(proba, [1.0, 0.0, 0.0, 1.0])


def planted(n: int, seed: int) -> WindowSet:
    """Noise windows (L=6, F=2) where positives trend upward in feature 0 and end high in feature 1."""
    rng = np.random.default_rng(seed)
    y = (rng.random(n) < 0.2).astype(np.int8)
    x = rng.normal(size=(n, 6, 2))
    x[:, :, 0] += np.outer(y, np.linspace(0.0, 3.0, 6))
    x[:, -1, 1] += 3.0 * y
    return WindowSet.from_dense(x, y)


@pytest.mark.parametrize("cls", [LogisticBaseline, HistGBBaseline])
def test_learned_baselines_find_a_planted_pattern(cls) -> None:
    train, test = planted(400, seed=2), planted(300, seed=3)
    model = cls(seed=0).fit(train)
    assert model.degenerate is False
    proba = model.predict_proba(test)
    assert proba.shape == (300,) and proba.dtype == np.float64
    assert proba.min() >= 0.0 and proba.max() <= 1.0
    assert score_metrics(test.y, proba, 0.5)["pr_auc"] > 0.9
    # the prior sets the bar: its PR-AUC is the prevalence
    assert score_metrics(test.y, PriorBaseline().fit(train).predict_proba(test), 0.5)["pr_auc"] < 0.4


@pytest.mark.parametrize("cls", [LogisticBaseline, HistGBBaseline])
@pytest.mark.parametrize("label", [0, 1])
def test_single_class_training_falls_back_to_its_rate(cls, label: int) -> None:
    train = WindowSet.from_dense(np.random.default_rng(4).normal(size=(20, 3, 2)), y=np.full(20, label))
    model = cls(seed=0).fit(train)
    assert model.degenerate is True
    np.testing.assert_array_equal(model.predict_proba(planted(5, seed=5)), np.full(5, float(label)))


def test_make_baseline_builds_each_and_rejects_unknown() -> None:
    train = planted(40, seed=8)
    for name in BASELINES:
        model = make_baseline(name, seed=1)
        assert isinstance(model, WindowModel) and model.name == name
        assert model.fit(train, val=train).predict_proba(train).shape == (40,)
    with pytest.raises(ValueError, match="prior, persistence, logistic, hgb"):
        make_baseline("lstm", seed=0)


def test_predict_before_fit_raises() -> None:
    with pytest.raises(RuntimeError, match="before fit"):
        LogisticBaseline(seed=0).predict_proba(planted(3, seed=9))


def test_large_training_parts_are_sampled_stratified_and_scored_in_chunks(monkeypatch) -> None:
    train = planted(1000, seed=10)  # ~25 % positive
    seen: list[int] = []
    real = LogisticBaseline._make

    def recording_make(self):
        pipe = real(self)
        fit = pipe.fit
        pipe.fit = lambda x, y: (seen.append((len(x), int(y.sum()))), fit(x, y))[1]
        return pipe

    monkeypatch.setattr(LogisticBaseline, "_make", recording_make)
    model = make_baseline("logistic", seed=0, max_train_windows=200)
    model.fit(train)
    n, positives = seen[0]
    assert n == 200 and model.fitted_on == 200
    assert positives == round(200 * train.y.mean())  # stratified: the sample keeps the training prevalence
    assert model.rate_ == pytest.approx(train.y.mean())  # the rate is still that of every training window
    again = make_baseline("logistic", seed=0, max_train_windows=200).fit(train)
    test = planted(300, seed=11)
    np.testing.assert_array_equal(model.predict_proba(test), again.predict_proba(test))  # same seed, same sample

    monkeypatch.setattr(LogisticBaseline, "predict_chunk", 7)  # chunked scoring equals one pass
    chunked = model.predict_proba(test)
    monkeypatch.setattr(LogisticBaseline, "predict_chunk", 10_000)
    # float32 features: a matrix product may round differently by chunk size, within float32's precision
    np.testing.assert_allclose(chunked, model.predict_proba(test), rtol=1e-5, atol=1e-9)
    assert make_baseline("hgb", seed=0, max_train_windows=None).fit(train).fitted_on == 1000


# ---------------------------------------------------------------- shared float32 features, sampling, early stop

def test_float32_features_match_float64_by_hand() -> None:
    # two windows (L=4, F=2) over values far from zero, where float32 rounding shows if anything does
    x = np.array([[[1000.5, -2.0], [1001.0, -1.0], [1003.0, 0.0], [1002.5, 5.0]],
                  [[0.25, 3.0], [0.5, 3.0], [0.75, 3.0], [1.0, 3.0]]])
    ws = WindowSet.from_dense(x, y=[0, 1])
    f32 = summary_features(ws)
    f64 = summary_features(ws, dtype=np.float64)
    assert f32.dtype == np.float32 and f64.dtype == np.float64
    # by hand, window 0 feature 0: mean 1001.75; centred steps -1.5,-0.5,0.5,1.5 (sum of squares 5):
    # slope = (-1.5·1000.5 - 0.5·1001 + 0.5·1003 + 1.5·1002.5) / 5 = (3 + 1) / 5 = 0.8
    std0 = np.sqrt(((1000.5 - 1001.75) ** 2 + (1001 - 1001.75) ** 2 + (1003 - 1001.75) ** 2
                    + (1002.5 - 1001.75) ** 2) / 4)
    expected0 = [1002.5, 5.0, 1001.75, 0.5, std0, np.std([-2.0, -1.0, 0.0, 5.0]), 1000.5, -2.0, 1003.0, 5.0,
                 0.8, (1.5 * 5 + 0.5 * 0 - 0.5 * -1 - 1.5 * -2) / 5]
    expected1 = [1.0, 3.0, 0.625, 3.0, np.std([0.25, 0.5, 0.75, 1.0]), 0.0, 0.25, 3.0, 1.0, 3.0, 0.25, 0.0]
    np.testing.assert_allclose(f64, [expected0, expected1], rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(f32, f64, rtol=1e-6, atol=1e-5)


def test_stratified_sample_keeps_both_classes_and_the_base_rate() -> None:
    y = np.zeros(10_000, np.int8)
    y[::50] = 1  # 2 % positive: 200 events
    keep = stratified_sample(y, 1_000, seed=3)
    assert len(keep) == 1_000 and np.all(np.diff(keep) > 0)  # sorted, no repeats
    assert int(y[keep].sum()) == 20  # exactly the 2 % base rate
    assert stratified_sample(y, 10_000, seed=3) is None and stratified_sample(y, None, seed=3) is None
    # a single event would make a plain stratified split refuse: it is kept, and the rest filled at random
    one = np.zeros(500, np.int8)
    one[123] = 1
    keep = stratified_sample(one, 50, seed=0)
    assert len(keep) == 50 and 123 in keep and int(one[keep].sum()) == 1


def test_hgb_stops_early_on_an_easy_problem() -> None:
    train, val = planted(2_000, seed=20), planted(500, seed=21)
    model = HistGBBaseline(seed=0).fit(train, val)
    assert model.model_.do_early_stopping_
    assert 1 <= model.model_.n_iter_ < HistGBBaseline.max_iter  # the validation loss stopped improving early
    # without validation windows sklearn holds out part of the training sample; on labels that are pure noise
    # its held-out loss stops improving within a few rounds
    noise = WindowSet.from_dense(np.random.default_rng(23).normal(size=(2_000, 6, 2)),
                                 y=(np.random.default_rng(24).random(2_000) < 0.2).astype(np.int8))
    alone = HistGBBaseline(seed=0).fit(noise)
    assert alone.model_.do_early_stopping_ and alone.model_.n_iter_ < 50
    test = planted(500, seed=22)
    assert score_metrics(test.y, model.predict_proba(test), 0.5)["pr_auc"] > 0.9


@pytest.mark.parametrize("cached", [False, True])
def test_hgb_stops_early_on_a_stratified_sample_of_a_large_validation_set(cached: bool, monkeypatch) -> None:
    train, val = planted(1_500, seed=40), planted(900, seed=41)
    seen: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
    real = HistGBBaseline._make

    def recording_make(self):
        model = real(self)
        fit = model.fit
        model.fit = lambda x, y, **kw: (seen.append((kw["X_val"], kw["y_val"], kw["sample_weight_val"])),
                                        fit(x, y, **kw))[1]
        return model

    monkeypatch.setattr(HistGBBaseline, "_make", recording_make)
    cache = SummaryCache() if cached else None
    if cached:
        cache.shared(val)  # the fold's validation features are already held (logistic scored them first)
    def hgb(stopping: int | None) -> HistGBBaseline:
        model = HistGBBaseline(seed=5, max_train_windows=300, cache=cache)
        model.stopping_windows = stopping
        return model

    assert HistGBBaseline.stopping_windows == 100_000
    hgb(300).fit(train, val)
    x_val, y_val, w_val = seen[-1]
    keep = stratified_sample(val.y, 300, seed=5)
    assert len(keep) == 300 and int(y_val.sum()) == round(300 * val.y.mean())  # the base rate is kept
    np.testing.assert_array_equal(y_val, val.y[keep])
    np.testing.assert_allclose(x_val, summary_features(val.subset(keep)), rtol=1e-6)
    positives = int(train.y[stratified_sample(train.y, 300, seed=5)].sum())
    np.testing.assert_allclose(w_val, np.where(y_val == 1, 300 / (2 * positives), 300 / (2 * (300 - positives))))
    # a validation set no larger than the bound is read whole, as before
    hgb(900).fit(train, val)
    assert len(seen[-1][1]) == 900
    hgb(None).fit(train, val)
    np.testing.assert_array_equal(seen[-1][1], val.y)


@pytest.mark.parametrize("name", ["logistic", "hgb"])
def test_shared_features_give_the_same_probabilities_as_window_sets(name: str, monkeypatch) -> None:
    train, val, test = planted(3_000, seed=30), planted(400, seed=31), planted(700, seed=32)
    plain = make_baseline(name, seed=0, max_train_windows=1_000).fit(train, val)
    cache = SummaryCache()
    shared = make_baseline(name, seed=0, max_train_windows=1_000, cache=cache).fit(train, val)
    assert shared.fitted_on == plain.fitted_on == 1_000
    monkeypatch.setattr(type(plain), "predict_chunk", 128)  # the plain path summarises chunk by chunk
    np.testing.assert_allclose(shared.predict_proba(test), plain.predict_proba(test), rtol=1e-6, atol=1e-9)


def test_one_cache_computes_each_window_set_once(monkeypatch) -> None:
    import lstm_core.baselines as b

    calls: list[int] = []
    real = b.summary_features
    monkeypatch.setattr(b, "summary_features", lambda ws, *a, **k: (calls.append(len(ws)), real(ws, *a, **k))[1])
    train, val, test = planted(3_000, seed=40), planted(400, seed=41), planted(700, seed=42)
    cache = SummaryCache()
    for name in ("logistic", "hgb"):
        model = make_baseline(name, seed=0, max_train_windows=1_000, cache=cache).fit(train, val)
        model.predict_proba(val)
        model.predict_proba(test)
    # val and test once each for both models; the sample (1,000 of the 3,000 training windows) once per model,
    # stored as float64 into an array that model's fit owns
    assert sorted(calls) == [400, 700, 1_000, 1_000]


def test_a_window_set_over_the_cache_budget_is_not_held_and_scores_the_same(monkeypatch) -> None:
    import lstm_core.baselines as b

    train, val, test = planted(3_000, seed=50), planted(400, seed=51), planted(700, seed=52)
    per_window = SummaryCache.nbytes(test) // len(test)
    assert per_window == 6 * test.n_features * 4  # six float32 statistics per feature
    calls: list[int] = []
    real = b.summary_features
    monkeypatch.setattr(b, "summary_features", lambda ws, *a, **k: (calls.append(len(ws)), real(ws, *a, **k))[1])
    unbounded, bounded = SummaryCache(), SummaryCache(max_bytes=1_000 * per_window)  # val fits, val + test not
    scores = {}
    for cache in (unbounded, bounded):
        for name in ("logistic", "hgb"):
            model = make_baseline(name, seed=0, max_train_windows=1_000, cache=cache).fit(train, val)
            scores[id(cache), name] = (model.predict_proba(val), model.predict_proba(test))
    # bounded: val 400 is held, test 700 would pass the budget, so each model summarises it as it scores
    assert bounded.held_bytes == 400 * per_window <= bounded.max_bytes
    assert unbounded.held_bytes == 1_100 * per_window  # val and test held; the sample never is
    # each cache: both models' own float64 sample (1,000), val once; test once unbounded, twice bounded
    assert sorted(calls) == sorted([1_000, 1_000, 400, 700] + [1_000, 1_000, 400, 700, 700])
    for name in ("logistic", "hgb"):
        for a, c in zip(scores[id(unbounded), name], scores[id(bounded), name], strict=True):
            np.testing.assert_array_equal(a, c)


@pytest.mark.parametrize("name", ["logistic", "hgb"])
def test_a_fit_reads_its_own_features_in_its_classifiers_dtype_equal_to_the_shared_ones(name: str,
                                                                                      monkeypatch) -> None:
    import sklearn.linear_model
    import sklearn.preprocessing

    train, val = planted(3_000, seed=60), planted(400, seed=61)
    seen: list[np.ndarray] = []
    if name == "hgb":
        real = HistGBBaseline._fit_model
        monkeypatch.setattr(HistGBBaseline, "_fit_model",
                            lambda self, m, x, y, v, r: (seen.append(x.copy()), real(self, m, x, y, v, r))[1])
    else:  # what the logistic regression itself receives, after the pipeline's scaler
        real = sklearn.linear_model.LogisticRegression.fit
        monkeypatch.setattr(sklearn.linear_model.LogisticRegression, "fit",
                            lambda self, x, y, **kw: (seen.append(x), real(self, x, y, **kw))[1])
    cache = SummaryCache()
    model = make_baseline(name, seed=0, max_train_windows=1_000, cache=cache).fit(train, val)
    sample = cache.sample(train, 1_000, 0)
    (x,) = seen
    # what scikit-learn fits in, without a converted copy: lbfgs keeps float32, boosting converts to float64
    assert x.dtype == (np.float64 if name == "hgb" else np.float32) and x.flags.c_contiguous
    float32 = summary_features(sample)
    if name == "hgb":
        np.testing.assert_array_equal(x, float32.astype(np.float64))  # the float32 statistics, bit for bit
    else:  # standardised where they lie: the regression read the very array the scaler scaled
        scaled = sklearn.preprocessing.StandardScaler().fit_transform(float32)
        np.testing.assert_array_equal(x, scaled)
        assert model.model_.named_steps["standardscaler"].copy  # scoring copies again: it reads shared features
    # the sample is never held: no one reads it after the fit
    assert id(sample) not in cache._features


def test_logistic_scoring_leaves_the_shared_features_as_they_were() -> None:
    train, val, test = planted(3_000, seed=62), planted(400, seed=63), planted(700, seed=64)
    cache = SummaryCache()
    model = make_baseline("logistic", seed=0, max_train_windows=1_000, cache=cache).fit(train, val)
    first = model.predict_proba(test)
    np.testing.assert_array_equal(cache.shared(test), summary_features(test))
    np.testing.assert_array_equal(model.predict_proba(test), first)


# ---------------------------------------------------------------- label_delay moves persistence

def _persistence_on(frame, length: int, **cfg) -> np.ndarray:
    """Persistence's test scores on every window of ``frame``, fitted on the same windows (for its prior)."""
    import pandas as pd  # noqa: F401  (frames come from the callers)

    from lstm_core.config import DataConfig
    from lstm_core.data import resolve_spec, to_series
    from lstm_core.windows import make_windows, window_set

    data = DataConfig(**cfg)
    series = to_series(frame, resolve_spec(frame, data))
    index = make_windows(series, length, label_delay=data.known_after)
    ws = window_set(series.features, index, length)
    return PersistenceBaseline().fit(ws).predict_proba(ws)


EVENTS = [0, 1, 1, 0, 0, 1, 0, 0]  # rows 0..7 of one entity


def _event_frame():
    import pandas as pd
    return pd.DataFrame({"time": range(8), "x": np.arange(8.0), "event": EVENTS})


@pytest.mark.parametrize(("delay", "expected"), [
    # L=2, H=1: windows end at t = 1..6. delay 0 (the event-mode default): event[t] = EVENTS[1:7]
    (None, [1, 1, 0, 0, 1, 0]),
    (0, [1, 1, 0, 0, 1, 0]),
    # delay 2: event[t-2]; t=1 reads row -1, before the entity starts → 0; t=2..6 → EVENTS[0:5]
    (2, [0, 0, 1, 1, 0, 0]),
    # never: the training base rate of the targets y = event[t+1] = EVENTS[2:8] = 1,0,0,1,0,0 → 2/6
    ("never", [1 / 3] * 6),
])
def test_label_delay_moves_persistence_in_event_mode(delay, expected) -> None:
    got = _persistence_on(_event_frame(), 2, event_col="event", horizon=1, label_delay=delay)
    np.testing.assert_allclose(got, expected)


LABELS = [0, 1, 0, 0, 1, 1]


def _label_frame(entity: bool = False):
    import pandas as pd
    frame = pd.DataFrame({"time": list(range(6)) * (2 if entity else 1), "x": np.arange(12.0 if entity else 6.0),
                          "label": LABELS * (2 if entity else 1)})
    if entity:
        frame["unit"] = ["a"] * 6 + ["b"] * 6
    return frame


@pytest.mark.parametrize(("delay", "lookahead", "expected"), [
    # L=3: windows end at t = 2..5, targets LABELS[2:6] = 0,0,1,1.
    # delay 0 and lookahead 0: the window's own label is never read: label[t-1] = LABELS[1:5]
    (0, 0, [1, 0, 0, 1]),
    (1, 0, [1, 0, 0, 1]),
    # delay 3: label[t-3]: t=2 reads row -1 → 0; t=3..5 → LABELS[0:3] = 0,1,0
    (3, 0, [0, 0, 1, 0]),
    # delay 1 but lookahead 1: a label is not known before the rows that decide it: label[t-2] = 0,1,0,0
    (1, 1, [0, 1, 0, 0]),
    # never (the label-mode default, delay None): the training base rate 2/4
    (None, 0, [0.5] * 4),
    ("never", 0, [0.5] * 4),
])
def test_label_delay_moves_persistence_in_label_mode(delay, lookahead, expected) -> None:
    got = _persistence_on(_label_frame(), 3, label_col="label", label_lookahead=lookahead, label_delay=delay)
    np.testing.assert_allclose(got, expected)


def test_label_delay_never_reads_across_entities() -> None:
    # two entities with the same labels; delay 3: label[t-3] within the entity. b's first window (its row 2)
    # reads before b starts → 0, never a's last row (label 1): t=2..5 → 0, 0, 1, 0 in both
    got = _persistence_on(_label_frame(entity=True), 3, label_col="label", entity_col="unit", label_delay=3)
    np.testing.assert_allclose(got, [0, 0, 1, 0] * 2)


def test_label_delay_defaults_per_mode_and_refuses_negative() -> None:
    from pydantic import ValidationError

    from lstm_core.config import DataConfig
    assert DataConfig(event_col="e").known_after == 0
    assert DataConfig(label_col="l").known_after is None
    assert DataConfig(label_col="l", label_delay=4).known_after == 4
    with pytest.raises(ValidationError, match="label_delay"):
        DataConfig(label_col="l", label_delay=-1)


def _mapped(rows: np.ndarray, path) -> np.ndarray:
    """``rows`` written to a file and mapped back read-only, as the workspace hands a stage its fold's rows."""
    np.save(path, rows)
    return np.load(path, mmap_mode="r").view(np.ndarray)


@pytest.mark.parametrize("name", ["logistic", "hgb"])
def test_a_fit_lets_mapped_rows_go_while_it_fits_and_scores_the_same(name: str, tmp_path, monkeypatch) -> None:
    """The classifier reads its sample's features only, so rows mapped from a file are dropped from the
    stage's resident memory while it fits; scoring faults them back, and every probability is the one that
    rows in memory give."""
    import lstm_core.baselines as baselines

    train, val, test = planted(3_000, seed=40), planted(400, seed=41), planted(700, seed=42)
    rows = np.concatenate([train.rows, val.rows, test.rows])
    offsets = np.cumsum([0, len(train.rows), len(val.rows)])
    parts = (train, val, test)
    mapped = _mapped(rows, tmp_path / "rows.npy")
    on_file = [WindowSet(mapped, ws.ends + off, ws.length, ws.y, ws.last_seen, ws.synthetic)
               for ws, off in zip(parts, offsets, strict=True)]
    in_memory = [WindowSet(rows, ws.ends + off, ws.length, ws.y, ws.last_seen, ws.synthetic)
                 for ws, off in zip(parts, offsets, strict=True)]
    dropped = []
    real = baselines.drop_mapped_pages
    monkeypatch.setattr(baselines, "drop_mapped_pages", lambda r: dropped.append(real(r)))
    a = make_baseline(name, seed=0, max_train_windows=1_000, cache=SummaryCache()).fit(*on_file[:2])
    assert dropped == [True]  # once per fit, before the classifier runs
    b = make_baseline(name, seed=0, max_train_windows=1_000, cache=SummaryCache()).fit(*in_memory[:2])
    assert dropped == [True, False]  # rows in memory are left alone
    np.testing.assert_array_equal(a.predict_proba(on_file[2]), b.predict_proba(in_memory[2]))
