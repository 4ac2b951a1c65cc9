"""What the refit is told (the folds' median best step) and how the summary words a kept logistic start."""
from __future__ import annotations

from lstm_core.config import PipelineConfig
from lstm_pipeline.report import start_sentence
from tasks.tracking import final_plan


def folds(*best_steps: int) -> list[dict]:
    return [{"k": k, "trained": {"best_step": s, "best_epoch": s // 50, "schedule_steps": 1500},
             "lstm": {"threshold": 0.1 * k}} for k, s in enumerate(best_steps, 1)]


def test_the_refit_takes_the_median_best_step_and_zero_when_most_folds_kept_their_start() -> None:
    cfg = PipelineConfig()  # 30 evaluations over 1,500 steps: one every 50
    plan = final_plan(cfg, folds(0, 0, 650))
    assert (plan["final_steps"], plan["final_schedule_steps"], plan["final_epochs"]) == (0, 1500, 0)
    plan = final_plan(cfg, folds(0, 120, 650))
    assert (plan["final_steps"], plan["final_epochs"]) == (120, 3)  # ceil(120 / 50) evaluations
    assert plan["final_threshold"] == 0.2


def summary(best_steps: list[int | None], **model) -> dict:
    cfg = PipelineConfig().model_copy(update={"model": PipelineConfig().model.model_copy(update=model)})
    return {"config": cfg.model_dump(mode="json"),
            "folds": [{"fold": k, "best_step": s} for k, s in enumerate(best_steps, 1)]}


def test_the_summary_says_which_folds_kept_the_logistic_start() -> None:
    assert start_sentence(summary([0, 300, 0])).startswith(
        "The LSTM kept its start, the logistic regression on window summaries, in folds 1, 3:")
    assert "in fold 2:" in start_sentence(summary([50, 0, 300]))
    assert "in every fold:" in start_sentence(summary([0, 0]))
    assert start_sentence(summary([50, 300])) is None  # training beat the start everywhere
    assert start_sentence(summary([0, 0], head_init="random")) is None  # no logistic start to keep
    assert start_sentence(summary([None, None])) is None  # a summary written before best_step was recorded


def test_the_verdict_shows_a_gain_too_small_for_three_decimals() -> None:
    from lstm_pipeline.report import verdict

    def s(lstm: float, logistic: float) -> dict:
        return {"aggregate": {"lstm": {"pr_auc_mean": lstm}, "logistic": {"pr_auc_mean": logistic}},
                "best_baseline": "logistic", "folds": [{}, {}, {}]}

    assert verdict(s(0.9812, 0.9809), bold="") == ("The LSTM beats the best baseline (logistic) on mean test "
                                                   "PR-AUC: 0.9812 vs 0.9809 (+0.0003) over 3 folds.")
    assert verdict(s(0.9700, 0.9800), bold="").endswith("0.970 vs 0.980 (-0.010) over 3 folds.")


def test_the_final_sentence_says_when_the_final_model_is_its_logistic_start() -> None:
    from lstm_pipeline.report import final_sentence

    ev = {"held_out": "the last 20 of 100 entities", "windows": 3513, "pr_auc": 0.985, "mcc": 0.919, "f1": 0.933,
          "threshold": 0.658, "steps": 0}
    s = summary([0, 0, 800])
    s["final_model"] = {"evaluation": ev}
    assert final_sentence(s).endswith("It took no training step (the folds' median best step is 0): it is its "
                                      "logistic start, the logistic regression on window summaries.")
    s["final_model"]["evaluation"] = {**ev, "steps": 650}
    assert final_sentence(s).endswith("F1 0.933 at threshold 0.658.")
