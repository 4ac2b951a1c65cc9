"""The promotion gate: when may a challenger become the champion?

Two rules, both required:
1. its walk-forward mean test PR-AUC beats the best baseline's by at least ``margin``;
2. on the same data fingerprint, it is not worse than the current champion.

A champion trained on other data is not comparable; rule 2 then does not apply and the reasons say so.
The decision is plain data, so it can be written as version tags and into the run summary.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Candidate:
    """What the gate needs to know about one model version."""

    version: int
    pr_auc: float  # mean walk-forward test PR-AUC of the LSTM
    baseline: str | None  # the best baseline's name
    baseline_pr_auc: float
    data_hash: str


@dataclass(frozen=True)
class Decision:
    promote: bool
    reasons: list[str] = field(default_factory=list)

    def tags(self) -> dict[str, str]:
        return {"gate.decision": "promoted" if self.promote else "refused", "gate.reasons": " | ".join(self.reasons)}


def decide(challenger: Candidate, champion: Candidate | None, margin: float) -> Decision:
    """Apply both rules; every rule adds a reason, passed or not."""
    reasons, ok = [], True
    if not math.isfinite(challenger.pr_auc):
        return Decision(False, ["the LSTM's walk-forward PR-AUC is undefined (no positives in a test part?)"])
    if challenger.baseline is None or not math.isfinite(challenger.baseline_pr_auc):
        reasons.append("no baseline had a defined PR-AUC to beat")
    else:
        gain = challenger.pr_auc - challenger.baseline_pr_auc
        passed = gain >= margin
        ok &= passed
        reasons.append(f"PR-AUC {challenger.pr_auc:.4f} {'beats' if passed else 'does not beat'} "
                       f"{challenger.baseline} {challenger.baseline_pr_auc:.4f} by the margin {margin:.4f} "
                       f"(gain {gain:+.4f})")
    if champion is None:
        reasons.append("there is no champion yet")
    elif champion.data_hash != challenger.data_hash:
        reasons.append(f"champion v{champion.version} was trained on other data ({champion.data_hash}); "
                       "not compared")
    else:
        passed = challenger.pr_auc >= champion.pr_auc
        ok &= passed
        reasons.append(f"PR-AUC {challenger.pr_auc:.4f} is {'not worse than' if passed else 'worse than'} "
                       f"champion v{champion.version}'s {champion.pr_auc:.4f} on the same data")
    return Decision(ok, reasons)
