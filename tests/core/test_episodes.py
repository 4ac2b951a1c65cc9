"""Episodes, lead times, false alarms and onset metrics, computed by hand on tiny series."""

from __future__ import annotations

import numpy as np
import pytest

from lstm_core.episodes import (
    RowLabels,
    aggregate_episodes,
    choose_episode_threshold,
    episode_metrics,
    episodes,
    onset_mask,
)

HOUR = 3_600 * 10**9


def eq(a, b) -> None:
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


# event mode, H = 2, one entity: an episode at the entity's first row (row 0) and one on rows 5-6
EVENTS = [1, 0, 0, 0, 0, 1, 1, 0, 0, 0, 0, 0]
ENDS = np.arange(2, 10)  # test windows end at rows 2..9
SCORES = np.array([0.1, 0.2, 0.9, 0.8, 0.1, 0.1, 0.7, 0.7])  # alarms (>= 0.5) at rows 4, 5 and 8, 9


def event_labels(datetime: bool = False) -> RowLabels:
    n = len(EVENTS)
    time = np.arange(n, dtype=np.int64) * (HOUR if datetime else 1)
    return RowLabels(np.array(EVENTS, np.int8), np.zeros(n, np.int64), time, datetime, "event", 2)


def test_episodes_are_maximal_runs_per_entity() -> None:
    onset, last = episodes(event_labels())
    eq(onset, [0, 5])
    eq(last, [0, 6])
    # two entities: a run that crosses the entity boundary is two episodes
    two = RowLabels(np.array([0, 1, 1, 1, 0]), np.array([0, 0, 0, 1, 1]), np.arange(5), False, "label", 0)
    onset, last = episodes(two)
    eq(onset, [1, 3])
    eq(last, [2, 3])


def test_event_mode_by_hand() -> None:
    m = episode_metrics(event_labels(), ENDS, SCORES, 0.5)
    # the episode at row 0 has an empty detection zone (rows -2..-1 are outside the entity): it does not count.
    # the one at row 5: zone rows 3..4, test windows end there; the first alarm in it is at row 4 → lead 5-4 = 1
    assert (m["episodes"], m["episodes_caught"], m["episode_recall"]) == (1, 1, 1.0)
    assert m["lead_rows_median"] == 1 and m["lead_rows_min"] == 1 and m["lead_rows_max"] == 1
    # alarm episodes [4, 5] (inside the warning zone 3..6) and [8, 9] (touches none): one false alarm
    assert (m["alarm_episodes"], m["false_alarms"], m["episode_precision"]) == (2, 1, 0.5)
    assert m["episode_f1"] == pytest.approx(2 * 0.5 * 1 / 1.5)
    assert m["false_alarms_per_1k_windows"] == pytest.approx(1000 / 8)
    assert "false_alarms_per_day" not in m
    # onset windows: event[t] = 0 → rows 2, 3, 4, 7, 8, 9; targets (an event in t+1..t+2): 0, 1, 1, 0, 0, 0;
    # scores .1 .2 .9 .1 .7 .7 → AP = 0.5·1 (at .9) + 0 (at .7) + 0.5·0.5 (at .2) = 0.75
    assert m["onset_windows"] == 6
    assert m["onset_pr_auc"] == pytest.approx(0.75)
    # flagged .9 .7 .7: TP 1, FP 2, FN 1, TN 2 → MCC (1·2 - 2·1)/... = 0
    assert m["onset_mcc"] == pytest.approx(0.0)


def test_datetime_lead_hours_and_false_alarms_per_day() -> None:
    m = episode_metrics(event_labels(datetime=True), ENDS, SCORES, 0.5)
    assert m["lead_hours_median"] == pytest.approx(1.0)
    # 8 test windows × 1 h = 1/3 day, one false alarm → 3 a day
    assert m["false_alarms_per_day"] == pytest.approx(3.0)
    assert "false_alarms_per_1k_windows" not in m


def test_a_wider_event_zone_catches_an_earlier_alarm() -> None:
    scores = np.array([0.9, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1])  # the only alarm at row 2, three rows early
    assert episode_metrics(event_labels(), ENDS, scores, 0.5)["episode_recall"] == 0.0
    wide = episode_metrics(event_labels(), ENDS, scores, 0.5, zone_rows=3)
    assert wide["episode_recall"] == 1.0 and wide["lead_rows_median"] == 3 and wide["false_alarms"] == 0


# label mode, two entities: a has an episode at its first row (rows 0-1) and one on rows 4-5; b has none
LABELS = [1, 1, 0, 0, 1, 1, 0, 0, 0, 0]
ENTITY = [0] * 6 + [1] * 4
L_SCORES = np.array([0.2, 0.9, 0.1, 0.1, 0.1, 0.1, 0.1, 0.8, 0.1, 0.1])  # alarms at rows 1 (a) and 7 (b)


def label_labels() -> RowLabels:
    return RowLabels(np.array(LABELS), np.array(ENTITY), np.r_[np.arange(6), np.arange(4)], False, "label", 0)


def test_label_mode_by_hand_with_an_entity_without_episodes() -> None:
    m = episode_metrics(label_labels(), np.arange(10), L_SCORES, 0.5)
    # the detection zone is the whole episode: rows 0-1 caught at row 1 (lead 0 - 1 = -1: a row late),
    # rows 4-5 missed
    assert (m["episodes"], m["episodes_caught"], m["episode_recall"]) == (2, 1, 0.5)
    assert m["lead_rows_median"] == -1
    # the alarm at row 1 is inside an episode; the one at row 7 (entity b, which has none) is false
    assert (m["alarm_episodes"], m["false_alarms"], m["episode_precision"], m["episode_f1"]) == (2, 1, 0.5, 0.5)
    assert m["false_alarms_per_1k_windows"] == pytest.approx(100.0)
    # onset windows: entity's first row or label[t-1] = 0 → rows 0, 3, 4, 6, 7, 8, 9 with y 1,0,1,0,0,0,0
    eq(np.flatnonzero(onset_mask(label_labels(), np.arange(10))), [0, 3, 4, 6, 7, 8, 9])
    # scores .2 .1 .1 .1 .8 .1 .1: AP = 0 (at .8) + 0.5·0.5 (at .2) + 0.5·2/7 (at .1)
    assert m["onset_pr_auc"] == pytest.approx(0.25 + 1 / 7)
    # flagged only row 7: TP 0, FP 1, FN 2, TN 4 → -2 / sqrt(1·2·5·6)
    assert m["onset_mcc"] == pytest.approx(-2 / np.sqrt(60))


def test_label_mode_first_rows_rule() -> None:
    m = episode_metrics(label_labels(), np.arange(10), L_SCORES, 0.5, zone_rows=1)
    # only each episode's first row counts: the alarm at row 1 is a row late → no episode caught, yet it is
    # inside an episode, so it is not a false alarm
    assert (m["episode_recall"], m["false_alarms"], m["episode_f1"]) == (0.0, 1, 0.0)


# event mode, H = 2: episode A on rows 4-6 ends just before the fold boundary (row 7), B on rows 9-10
BOUNDARY = [0, 0, 0, 0, 1, 1, 1, 0, 0, 1, 1, 0, 0, 0]


def boundary_labels() -> RowLabels:
    n = len(BOUNDARY)
    return RowLabels(np.array(BOUNDARY), np.zeros(n, np.int64), np.arange(n), False, "event", 2)


def test_two_episodes_touching_a_fold_boundary() -> None:
    labels = boundary_labels()
    # earlier fold: test windows end at rows 0..5; A's zone (rows 2-3) is there, B's (rows 7-8) is not
    early = episode_metrics(labels, np.arange(0, 6), np.zeros(6), 0.5)
    assert (early["episodes"], early["episode_recall"], early["alarm_episodes"]) == (1, 0.0, 0)
    assert np.isnan(early["episode_precision"]) and early["episode_f1"] == 0.0 and np.isnan(early["lead_rows_median"])
    # later fold: test windows end at rows 6..11; alarms at 6 and 7 form one alarm episode that overlaps A's
    # warning zone (rows 2-6) and B's (rows 7-10): not false. A cannot be warned of here and does not count;
    # B is caught at row 7, two rows before its onset
    later = episode_metrics(labels, np.arange(6, 12), np.array([0.9, 0.9, 0.1, 0.1, 0.1, 0.1]), 0.5)
    assert (later["episodes"], later["episodes_caught"], later["lead_rows_median"]) == (1, 1, 2)
    assert (later["alarm_episodes"], later["false_alarms"], later["episode_precision"]) == (1, 0, 1.0)
    # alarms split by a row that is not a test window are two alarm episodes
    gap = episode_metrics(labels, np.array([6, 8, 11]), np.array([0.9, 0.9, 0.9]), 0.5)
    assert (gap["alarm_episodes"], gap["false_alarms"]) == (3, 1)  # row 11 touches no warning zone


def test_episode_threshold_ties_go_to_the_highest() -> None:
    # 0.9: recall .5, precision 1 → F1 2/3; 0.1: every row alarmed, both caught, entity b's alarm false → 2/3
    assert choose_episode_threshold(label_labels(), np.arange(10), L_SCORES) == pytest.approx(0.9)


def test_aggregate_over_folds() -> None:
    agg = aggregate_episodes([{"episodes": 2, "episodes_caught": 1, "episode_recall": 0.5},
                              {"episodes": 1, "episodes_caught": 1, "episode_recall": 1.0},
                              {"episodes": 0, "episodes_caught": 0, "episode_recall": float("nan")}])
    assert agg["episode_recall_mean"] == pytest.approx(0.75)
    assert agg["episode_recall_std"] == pytest.approx(np.std([0.5, 1.0], ddof=1))
    assert agg["episode_recall_pooled"] == pytest.approx(2 / 3)


def test_bad_input_is_refused() -> None:
    with pytest.raises(ValueError, match="increasing"):
        episode_metrics(event_labels(), np.array([3, 2]), np.array([0.1, 0.2]), 0.5)
    with pytest.raises(ValueError, match="series has 12 rows"):
        episode_metrics(event_labels(), np.array([3, 12]), np.array([0.1, 0.2]), 0.5)


def test_evaluate_fold_reports_episodes_and_chooses_by_episode_f1() -> None:
    from lstm_core.evaluate import evaluate_fold, summarise_episodes
    from lstm_core.windows import WindowSet

    labels = label_labels()
    rows = np.zeros((10, 1), np.float32)

    class Fixed:  # scores by window end: L_SCORES
        name = "fixed"

        def fit(self, train, val=None):
            return self

        def predict_proba(self, ws):
            return L_SCORES[ws.ends]

    ws = WindowSet(rows, np.arange(10), 1, np.array(LABELS, np.int8), np.zeros(10, np.int8), np.zeros(10, bool))
    score = evaluate_fold(Fixed(), ws, ws, ws, "episode_f1", labels=labels)
    assert score.threshold == pytest.approx(0.9)  # as in test_episode_threshold_ties_go_to_the_highest
    assert score.episode["episode_recall"] == 0.5 and score.episode["false_alarms"] == 0
    assert summarise_episodes([{"fixed": score}])["fixed"]["episode_recall_mean"] == 0.5
    assert evaluate_fold(Fixed(), ws, ws, ws, "mcc").episode == {}  # no row labels, no episode metrics
    with pytest.raises(ValueError, match="row labels"):
        evaluate_fold(Fixed(), ws, ws, ws, "episode_f1")
