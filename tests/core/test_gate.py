"""The promotion gate's two rules, with hand-picked numbers."""
from __future__ import annotations

import math

from lstm_pipeline.gate import Candidate, decide


def cand(version=2, pr_auc=0.80, baseline="hgb", baseline_pr_auc=0.70, data_hash="abc"):
    return Candidate(version, pr_auc, baseline, baseline_pr_auc, data_hash)


def test_first_model_that_beats_the_baseline_is_promoted():
    d = decide(cand(), None, margin=0.05)
    assert d.promote
    assert "gain +0.1000" in d.reasons[0] and "no champion yet" in d.reasons[1]
    assert d.tags()["gate.decision"] == "promoted"


def test_margin_is_required_not_just_a_win():
    d = decide(cand(pr_auc=0.74, baseline_pr_auc=0.70), None, margin=0.05)  # gain 0.04 < 0.05
    assert not d.promote
    assert "does not beat hgb 0.7000 by the margin 0.0500 (gain +0.0400)" in d.reasons[0]


def test_gain_equal_to_the_margin_passes():
    assert decide(cand(pr_auc=0.75, baseline_pr_auc=0.70), None, margin=0.05 - 1e-12).promote


def test_worse_than_the_champion_on_the_same_data_is_refused():
    d = decide(cand(pr_auc=0.80), cand(version=1, pr_auc=0.82), margin=0.0)
    assert not d.promote
    assert "worse than champion v1's 0.8200 on the same data" in d.reasons[1]


def test_equal_to_the_champion_is_not_worse():
    assert decide(cand(pr_auc=0.82), cand(version=1, pr_auc=0.82), margin=0.0).promote


def test_champion_on_other_data_is_not_compared():
    d = decide(cand(pr_auc=0.80), cand(version=1, pr_auc=0.95, data_hash="zzz"), margin=0.0)
    assert d.promote
    assert "trained on other data (zzz); not compared" in d.reasons[1]


def test_undefined_pr_auc_is_refused():
    d = decide(cand(pr_auc=math.nan), None, margin=0.0)
    assert not d.promote and "undefined" in d.reasons[0]
