"""The promotion gate's rules, with hand-picked numbers that are exact in binary (so equality is equality)."""
from __future__ import annotations

import math

from lstm_pipeline.gate import Candidate, decide, paired

SETUP = {"target": "event 'failure' within 3 rows", "window": "24 rows, max gap None", "split": "by time, folds 3"}


def cand(version=2, folds=(0.75, 0.5, 0.625), base=(0.5, 0.25, 0.375), data_hash="abc", setup=None, final=None,
         baseline="hgb"):
    mean = sum(folds) / len(folds) if folds else 0.75
    base_mean = sum(base) / len(base) if base else 0.5
    return Candidate(version, mean, baseline, base_mean, data_hash, tuple(folds), tuple(base),
                     dict(SETUP if setup is None else setup), final)


# ---------------------------------------------------------------- the paired rule


def test_gain_exactly_equal_to_the_given_margin_passes():
    # gains 0.25, 0.25, 0.25: mean exactly 0.25
    result = paired((0.75, 0.5, 0.625), (0.5, 0.25, 0.375), margin=0.25)
    assert result.mean == 0.25 and result.passed
    assert not paired((0.75, 0.5, 0.625), (0.5, 0.25, 0.375), margin=0.375).passed


def test_a_fold_with_gain_exactly_zero_is_not_worse():
    # gains 0.25, 0, -0.125: mean 0.125/3 > 0; two of three folds not worse → promoted
    result = paired((0.75, 0.5, 0.25), (0.5, 0.5, 0.375), margin=None)
    assert result.wins == 2 and result.passed


def test_a_win_in_half_of_the_folds_is_not_most():
    # gains 0.125, -0.0625: mean 0.03125 > 0, wins 1 of 2 (not most); spread: stdev 0.1325.. / √2 = 0.09375
    result = paired((0.625, 0.4375), (0.5, 0.5), margin=None)
    assert (result.mean, result.wins) == (0.03125, 1)
    assert result.margin == 0.09375 and not result.passed


def test_a_minority_of_wins_passes_only_when_the_mean_gain_clears_the_spread():
    # gains 0.75, -0.25, -0.25: mean 1/12 > 0, one win of three, SE = √(var/3) = 1/3 > mean → refused
    result = paired((1.0, 0.25, 0.25), (0.25, 0.5, 0.5), margin=None)
    assert result.wins == 1 and result.mean > 0 and result.margin > result.mean and not result.passed
    # gains 0.5, 0.5, -1/128 ×3: two wins of five, mean 0.1953 > SE ≈ 0.124 → promoted
    small = 1 / 128
    result = paired((1.0, 1.0, 0.5 - small, 0.5 - small, 0.5 - small), (0.5,) * 5, margin=None)
    assert result.wins == 2 and result.mean >= result.margin and result.passed


def test_equal_in_every_fold_is_not_a_gain():
    result = paired((0.5, 0.5), (0.5, 0.5), margin=None)
    assert result.mean == 0 and result.wins == 2 and not result.passed  # the mean gain must be positive


# ---------------------------------------------------------------- decisions


def test_first_model_that_beats_the_baseline_in_every_fold_is_promoted():
    d = decide(cand(), None)
    assert d.promote and d.failed == []
    assert d.passed[0].startswith("the LSTM beats hgb fold by fold: mean paired gain +0.2500 over 3 folds, "
                                  "not worse in 3 of 3")
    assert "there is no champion yet" in d.notes
    assert d.tags()["gate.decision"] == "promoted" and d.tags()["gate.failed"] == "none"


def test_failed_and_passed_rules_are_kept_apart():
    d = decide(cand(folds=(0.5, 0.25, 0.375), base=(0.75, 0.5, 0.625)), None)
    assert not d.promote
    assert d.failed[0].startswith("the LSTM does not beat hgb fold by fold: mean paired gain -0.2500")
    assert d.reasons[0].startswith("failed: ") and all(not r.startswith("failed") for r in d.reasons[1:])
    assert d.tags()["gate.passed"] == "none"


def test_worse_than_a_comparable_champion_fold_by_fold_is_refused():
    champion = cand(version=1, folds=(0.875, 0.625, 0.75))
    d = decide(cand(), champion)
    assert not d.promote
    assert d.failed == ["does not beat champion v1 fold by fold on the same test windows: mean paired gain "
                        "-0.1250 over 3 folds, not worse in 0 of 3; one standard error of the gains 0.0000 "
                        "(means 0.6250 vs 0.7500)"]
    assert d.passed[0].startswith("the LSTM beats hgb")


def test_equal_to_the_champion_does_not_replace_it():
    d = decide(cand(), cand(version=1))
    assert not d.promote and d.failed[0].startswith("does not beat champion v1")


def test_champion_with_another_window_or_target_is_not_compared_and_says_why():
    other = dict(SETUP, window="48 rows, max gap None", target="event 'failure' within 6 rows")
    d = decide(cand(), cand(version=1, folds=(1.0, 1.0, 1.0), setup=other))
    assert d.promote
    (note,) = [n for n in d.notes if "champion" in n]
    assert note == ("champion v1 not compared: its test windows differ (target event 'failure' within 6 rows ≠ "
                    "event 'failure' within 3 rows; window 48 rows, max gap None ≠ 24 rows, max gap None)")


def test_champion_on_other_data_is_not_compared():
    d = decide(cand(), cand(version=1, folds=(1.0, 1.0, 1.0), data_hash="zzz"))
    assert d.promote and any("not compared: its test windows differ (data zzz ≠ abc)" in n for n in d.notes)


def test_a_given_margin_applies_to_the_champion_too():
    champion = cand(version=1, folds=(0.5, 0.25, 0.5))  # gains over it 0.25, 0.25, 0.125: mean 0.625/3
    assert decide(cand(), champion, margin=0.125).promote
    assert not decide(cand(), champion, margin=0.25).promote


def test_without_per_fold_records_the_means_decide_and_an_old_champion_is_not_compared():
    old = Candidate(1, 0.9, "hgb", 0.5, "abc")
    new = Candidate(2, 0.75, "hgb", 0.5, "abc")
    d = decide(new, old, margin=0.25)  # gain exactly 0.25
    assert d.promote
    assert "compared on the means" in d.passed[0]
    assert "champion v1 not compared" in " ".join(d.notes)


def test_an_undefined_final_holdout_is_refused_and_a_defined_one_reported():
    d = decide(cand(final={"pr_auc": math.nan, "mcc": 0.5}), None)
    assert not d.promote and "never evaluated is not promoted" in d.failed[0]
    d = decide(cand(final={"pr_auc": 0.5, "mcc": 0.25}), None)
    assert d.promote and "final model scored holdout PR-AUC 0.5000, MCC 0.2500" in d.passed[0]
    assert any("holdout metrics are not recorded" in n for n in decide(cand(), None).notes)


def test_undefined_pr_auc_is_refused():
    d = decide(Candidate(2, math.nan, "hgb", 0.5, "abc"), None)
    assert not d.promote and "undefined" in d.reasons[0]


# ---------------------------------------------------------------- judged on an episode metric


def test_the_gate_judges_the_episode_metric_it_is_given():
    from dataclasses import replace

    # episode recall per fold 0.5, 0.75, 0.5 against hgb's 0.25, 0.5, 0.5: gains 0.25, 0.25, 0 → promoted
    c = replace(cand(folds=(0.5, 0.75, 0.5), base=(0.25, 0.5, 0.5)), metric="episode_recall")
    d = decide(c, None)
    assert d.promote
    assert d.passed[0].startswith("the LSTM beats hgb fold by fold on episode_recall: mean paired gain +0.1667")
    # the same numbers the other way round refuse it, and say on which metric
    worse = replace(cand(folds=(0.25, 0.5, 0.5), base=(0.5, 0.75, 0.5)), metric="episode_recall")
    assert decide(worse, None).failed[0].startswith("the LSTM does not beat hgb fold by fold on episode_recall")


def test_an_undefined_episode_metric_refuses():
    c = cand(folds=(math.nan,), base=(0.5,))
    from dataclasses import replace

    d = decide(replace(c, pr_auc=math.nan, metric="episode_f1"), None)
    assert not d.promote and d.failed[0].startswith("the LSTM's walk-forward episode_f1 is undefined")
