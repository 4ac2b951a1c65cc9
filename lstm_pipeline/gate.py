"""The promotion gate: when may a challenger become the champion?

Every comparison is paired fold by fold: the challenger's test PR-AUC (or the episode metric
``register.gate_metric`` names: onset_pr_auc, episode_recall, episode_f1) on fold k against its rival's on the
very same test windows of fold k. The best baseline is the one with the highest mean test PR-AUC either way.
A rival is beaten when

- ``margin`` is None (the default, ``register.gate_margin: null``): the mean paired gain is positive, and
  either the challenger is not worse in more than half of the folds, or the mean gain is at least one
  standard error of the paired gains (their sample standard deviation / √K: the fold spread);
- ``margin`` is a number: the mean paired gain is at least ``margin`` (a gain equal to it passes).

The rules, all required:
1. the challenger beats the best baseline of its own run (paired per fold);
2. it beats the current champion, but only when the two are comparable: the same data fingerprint, target
   definition, window and split, so the same test windows. Otherwise the champion is not compared and the
   reasons say which of those differ;
3. a final model whose own holdout metrics were expected but are missing or undefined is refused: a model
   that was never evaluated is never promoted.

When a version carries no per-fold record (registered before one was kept), the challenger is judged on its
means and an old champion is not compared. The decision is plain data: failed rules, passed rules and notes
(rules that did not apply) become version tags and the run summary.
"""
from __future__ import annotations

import math
import statistics
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Candidate:
    """What the gate needs to know about one model version."""

    version: int
    pr_auc: float  # mean walk-forward test PR-AUC of the LSTM
    baseline: str | None  # the best baseline's name
    baseline_pr_auc: float
    data_hash: str
    folds: tuple[float, ...] = ()  # the LSTM's test PR-AUC per fold, fold order (empty: not recorded)
    baseline_folds: tuple[float, ...] = ()  # the best baseline's, on the same test windows
    setup: dict[str, str] = field(default_factory=dict)  # target, window, split: what fixes the test windows
    final: dict[str, float] | None = None  # the final model's own holdout metrics (None: not recorded)
    metric: str = "pr_auc"  # what pr_auc, folds and the baseline's fields hold (register.gate_metric)

    @property
    def label(self) -> str:
        """The judged metric as a person reads it: 'PR-AUC', or an episode metric such as 'episode_recall'."""
        return "PR-AUC" if self.metric == "pr_auc" else self.metric

    @property
    def on(self) -> str:
        """' on episode_recall' in the reasons when the gate judges an episode metric ('' for PR-AUC)."""
        return "" if self.metric == "pr_auc" else f" on {self.metric}"


@dataclass(frozen=True)
class Decision:
    promote: bool
    failed: list[str] = field(default_factory=list)
    passed: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # what was not compared, and why

    @property
    def reasons(self) -> list[str]:
        """Failed rules first, then passed ones, then notes, each marked as such."""
        return ([f"failed: {r}" for r in self.failed] + [f"passed: {r}" for r in self.passed]
                + [f"not applied: {r}" for r in self.notes])

    def markdown(self) -> str:
        """The whole decision for a version's description: failed rules, passed rules and notes, each listed
        apart (a tag holds one line; a description holds them all)."""
        parts = [f"**Gate: {'promoted to champion' if self.promote else 'not promoted'}**"]
        for title, items in (("Failed", self.failed), ("Passed", self.passed), ("Not applied", self.notes)):
            if items:
                parts.append(f"{title}:\n" + "\n".join(f"- {r}" for r in items))
        return "\n\n".join(parts)

    def tags(self) -> dict[str, str]:
        return {"gate.decision": "promoted" if self.promote else "refused", "gate.reasons": " | ".join(self.reasons),
                "gate.failed": " | ".join(self.failed) or "none", "gate.passed": " | ".join(self.passed) or "none"}


@dataclass(frozen=True)
class Paired:
    """The paired comparison of two per-fold PR-AUC lists."""

    mean: float
    wins: int  # folds where the challenger is not worse (gain >= 0)
    folds: int
    margin: float  # the margin the mean gain had to reach
    derived: bool  # margin from the fold spread (True) or given (False)
    passed: bool

    def text(self) -> str:
        how = f"one standard error of the gains {self.margin:.4f}" if self.derived else f"the margin {self.margin:.4f}"
        return (f"mean paired gain {self.mean:+.4f} over {self.folds} folds, not worse in {self.wins} of "
                f"{self.folds}; {how}")


def paired(mine: tuple[float, ...], theirs: tuple[float, ...], margin: float | None) -> Paired | None:
    """Fold-by-fold gains over the folds where both are defined, judged by the module's rule; None when none is."""
    gains = [a - b for a, b in zip(mine, theirs, strict=True) if math.isfinite(a) and math.isfinite(b)]
    if not gains:
        return None
    mean = statistics.fmean(gains)
    wins = sum(g >= 0 for g in gains)
    if margin is not None:
        return Paired(mean, wins, len(gains), margin, False, mean >= margin)
    spread = math.sqrt(statistics.variance(gains) / len(gains)) if len(gains) > 1 else 0.0  # standard error
    return Paired(mean, wins, len(gains), spread, True, mean > 0 and (2 * wins > len(gains) or mean >= spread))


def differences(challenger: Candidate, champion: Candidate) -> list[str]:
    """What makes the two runs' test windows differ: data, target, window, split (empty: comparable)."""
    out = []
    if champion.data_hash != challenger.data_hash:
        out.append(f"data {champion.data_hash or '?'} ≠ {challenger.data_hash or '?'}")
    for key in sorted(set(champion.setup) | set(challenger.setup)):
        theirs, mine = champion.setup.get(key, "?"), challenger.setup.get(key, "?")
        if theirs != mine:
            out.append(f"{key} {theirs} ≠ {mine}")
    return out


def _final_check(challenger: Candidate, failed: list[str], passed: list[str], notes: list[str]) -> None:
    final = challenger.final
    if final is None:
        notes.append("the final model's own holdout metrics are not recorded on this version")
    elif not math.isfinite(final.get("pr_auc", math.nan)):
        failed.append("the final model's own holdout PR-AUC is missing or undefined: a model never evaluated is "
                      "not promoted")
    else:
        mcc = final.get("mcc", math.nan)
        passed.append(f"the final model scored holdout PR-AUC {final['pr_auc']:.4f}"
                      + (f", MCC {mcc:.4f}" if math.isfinite(mcc) else "") + " on windows it never trained on")


def _baseline_rule(c: Candidate, margin: float | None, failed: list[str], passed: list[str],
                   notes: list[str]) -> None:
    if c.baseline is None or not math.isfinite(c.baseline_pr_auc):
        notes.append(f"no baseline had a defined {c.label} to beat")
        return
    if c.folds and c.baseline_folds:
        result = paired(c.folds, c.baseline_folds, margin)
        if result is not None:
            word = "beats" if result.passed else "does not beat"
            (passed if result.passed else failed).append(
                f"the LSTM {word} {c.baseline} fold by fold{c.on}: {result.text()} (means {c.pr_auc:.4f} vs "
                f"{c.baseline_pr_auc:.4f})")
            return
    gain = c.pr_auc - c.baseline_pr_auc
    ok = gain >= margin if margin is not None else gain > 0
    (passed if ok else failed).append(
        f"{c.label} {c.pr_auc:.4f} {'beats' if ok else 'does not beat'} {c.baseline} {c.baseline_pr_auc:.4f} "
        f"{f'by the margin {margin:.4f} ' if margin is not None else ''}(gain {gain:+.4f}; per-fold values not "
        "recorded, compared on the means)")


def _champion_rule(c: Candidate, champion: Candidate | None, margin: float | None, failed: list[str],
                   passed: list[str], notes: list[str]) -> None:
    if champion is None:
        notes.append("there is no champion yet")
        return
    differ = differences(c, champion)
    if differ:
        notes.append(f"champion v{champion.version} not compared: its test windows differ ({'; '.join(differ)})")
        return
    result = paired(c.folds, champion.folds, margin) if c.folds and len(c.folds) == len(champion.folds) else None
    if result is None:
        notes.append(f"champion v{champion.version} not compared: no per-fold test {c.label} recorded for both")
        return
    (passed if result.passed else failed).append(
        f"{'beats' if result.passed else 'does not beat'} champion v{champion.version} fold by fold{c.on} on the "
        f"same test windows: {result.text()} (means {c.pr_auc:.4f} vs {champion.pr_auc:.4f})")


def decide(challenger: Candidate, champion: Candidate | None, margin: float | None = None) -> Decision:
    """Apply every rule; each adds a failed or passed reason, or a note when it did not apply."""
    if not math.isfinite(challenger.pr_auc):
        return Decision(False, [f"the LSTM's walk-forward {challenger.label} is undefined (no positives, or no "
                                "episode, in a test part?)"])
    failed: list[str] = []
    passed: list[str] = []
    notes: list[str] = []
    _final_check(challenger, failed, passed, notes)
    _baseline_rule(challenger, margin, failed, passed, notes)
    _champion_rule(challenger, champion, margin, failed, passed, notes)
    return Decision(not failed, failed, passed, notes)
