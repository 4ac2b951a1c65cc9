"""Imbalance strategies, applied to the training windows of one fold and nothing else.

- ``none`` and ``class_weight`` leave the windows alone (``class_weight`` returns a BCE ``pos_weight``).
- ``random_over`` and ``random_under`` let imbalanced-learn pick window *indices*: the result is a WindowSet
  over the very same rows with repeated (or fewer) ends, so not one window is copied.
- ``smote``, ``adasyn``, ``borderline_smote``, ``smote_tomek`` and ``smote_enn`` flatten the windows that the
  sampler needs to (n, L·F), and append what it synthesises as new rows after the training rows.
- ``balanced_bagging`` leaves the windows alone here; ``bagging_draws`` gives each of its K networks every
  positive and a random draw of negatives (see ``lstm_core.ensemble``).

Every count follows imbalanced-learn's float rule: over-samplers end with ``int(ratio · negatives)`` positives,
under-samplers keep ``int(positives / ratio)`` negatives. Added windows are marked in ``WindowSet.synthetic``, so
a test can prove that none of them reaches validation or test.

Memory: a synthesiser's needs are estimated before any window is flattened (``estimate_bytes``). Over
``memory_budget_mb`` only the minority and a random sample of the majority enter the sampler (the other majority
windows stay as they are), or the fold is refused with the memory it needs.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

import numpy as np

from lstm_core.config import ResampleConfig
from lstm_core.data import DataError
from lstm_core.splits import training_rows
from lstm_core.windows import WindowSet

SYNTHESISERS = ("smote", "adasyn", "borderline_smote", "smote_tomek", "smote_enn")
# SMOTE interpolates between positives only: its neighbour search never reads a negative window. These do.
READS_MAJORITY = ("adasyn", "borderline_smote", "smote_tomek", "smote_enn")
NAMES = {"smote": "SMOTE", "adasyn": "ADASYN", "borderline_smote": "Borderline-SMOTE", "smote_tomek": "SMOTE-Tomek",
         "smote_enn": "SMOTE-ENN"}
MB = 2**20
# SMOTE makes its synthetic windows in calls of this many bytes: imbalanced-learn builds them in float64 with
# about 4 windows' worth of temporaries each, which would otherwise dwarf the windows themselves.
SMOTE_BATCH_BYTES = 64 * MB

Info = dict[str, float | int | str]


@dataclass(frozen=True)
class Resampled:
    """Training windows after resampling, the loss weight to use, and what was done."""

    windows: WindowSet
    pos_weight: float | None = None
    info: Info = field(default_factory=dict)


def _counts(y: np.ndarray) -> tuple[int, int]:
    pos = int(y.sum())
    return len(y) - pos, pos


def over_target(neg: int, pos: int, ratio: float) -> int:
    """Positive windows an over-sampler adds: imbalanced-learn's int(n_majority · ratio − n_minority)."""
    return int(neg * ratio - pos)


def under_target(pos: int, ratio: float) -> int:
    """Negative windows an under-sampler keeps: imbalanced-learn's int(n_minority / ratio)."""
    return int(pos / ratio)


def resample(train: WindowSet, cfg: ResampleConfig, seed: int) -> Resampled:
    """Apply ``cfg.strategy`` to the training windows only."""
    neg, pos = _counts(train.y)
    info: Info = {"strategy": cfg.strategy, "negatives_before": neg, "positives_before": pos}
    if cfg.strategy == "none":
        return Resampled(train, None, info)
    if pos == 0:
        return _fallback(train, cfg, info, f"resample.strategy={cfg.strategy} needs positives in the training "
                                           "part; it has none", to="none")
    if cfg.strategy == "class_weight":
        return _class_weight(train, info)
    if cfg.strategy == "balanced_bagging":
        keep = min(neg, under_target(pos, cfg.ratio()))
        return Resampled(train, None, {**info, "members": cfg.bagging_estimators, "negatives_per_member": keep})
    if pos >= neg:
        return Resampled(train, None, {**info, "note": "positives are not the minority; nothing resampled"})
    if cfg.strategy == "random_over":
        return _random_over(train, cfg, seed, info)
    if cfg.strategy == "random_under":
        return _random_under(train, cfg, seed, info)
    return _synthesise(train, cfg, seed, info)


def _class_weight(train: WindowSet, info: Info) -> Resampled:
    neg, pos = _counts(train.y)
    weight = neg / pos
    return Resampled(train, weight, {**info, "pos_weight": weight})


def _fallback(train: WindowSet, cfg: ResampleConfig, info: Info, reason: str, to: str) -> Resampled:
    """Fall back to ``to`` when the user allowed it; otherwise stop with ``reason``."""
    if not cfg.allow_fallback:
        raise DataError(f"{reason}. Set resample.allow_fallback=true to use {to} in such folds instead")
    out = _class_weight(train, info) if to == "class_weight" else Resampled(train, None, dict(info))
    return replace(out, info={**out.info, "strategy": to, "fallback_from": cfg.strategy, "note": reason})


def _unchanged(train: WindowSet, info: Info, ratio: float) -> Resampled:
    return Resampled(train, None, {**info, "note": f"already at or above sampling_strategy={ratio:g}; "
                                                   "nothing synthesised"})


def _after(info: Info, out: WindowSet, added: int) -> Info:
    neg, pos = _counts(out.y)
    return {**info, "synthetic": added, "negatives_after": neg, "positives_after": pos}


def _picked(sampler, y: np.ndarray) -> np.ndarray:
    """The window indices a random sampler picks; it is handed an index column, never a window."""
    sampler.fit_resample(np.zeros((len(y), 1), np.int8), y)
    return np.asarray(sampler.sample_indices_, np.int64)


def _random_over(train: WindowSet, cfg: ResampleConfig, seed: int, info: Info) -> Resampled:
    from imblearn.over_sampling import RandomOverSampler

    neg, pos = _counts(train.y)
    added = over_target(neg, pos, cfg.ratio())
    if added <= 0:
        return _unchanged(train, info, cfg.ratio())
    picked = _picked(RandomOverSampler(sampling_strategy={1: pos + added}, random_state=seed), train.y)
    out = train.subset(picked)  # the same rows; duplicated windows are repeated ends (zero copy)
    out = replace(out, synthetic=out.synthetic | (np.arange(len(picked)) >= len(train)))
    return Resampled(out, None, _after(info, out, added))


def _random_under(train: WindowSet, cfg: ResampleConfig, seed: int, info: Info) -> Resampled:
    from imblearn.under_sampling import RandomUnderSampler

    neg, pos = _counts(train.y)
    keep = under_target(pos, cfg.ratio())
    if keep >= neg:
        return Resampled(train, None, {**info, "note": f"already at or above sampling_strategy={cfg.ratio():g}; "
                                                       "nothing removed"})
    out = train.subset(_picked(RandomUnderSampler(sampling_strategy={0: keep}, random_state=seed), train.y))
    return Resampled(out, None, {**_after(info, out, 0), "removed": neg - keep})


def bagging_draws(y: np.ndarray, cfg: ResampleConfig, seed: int) -> list[np.ndarray]:
    """Window indices for each balanced-bagging member: every positive plus int(positives / ratio) negatives,
    drawn without replacement with seed + i (imbalanced-learn's RandomUnderSampler)."""
    from imblearn.under_sampling import RandomUnderSampler

    neg, pos = _counts(y)
    if pos == 0:
        raise DataError("resample.strategy=balanced_bagging needs positives in the training part; it has none")
    keep = under_target(pos, cfg.ratio())
    if keep >= neg:  # too few negatives to draw from: every member sees every window
        return [np.arange(len(y), dtype=np.int64)] * cfg.bagging_estimators
    return [np.sort(_picked(RandomUnderSampler(sampling_strategy={0: keep}, random_state=seed + i), y))
            for i in range(cfg.bagging_estimators)]


# --- synthesisers --------------------------------------------------------------------------------------


def smote_batch(length: int, n_features: int) -> int:
    """Synthetic windows SMOTE makes per imbalanced-learn call: SMOTE_BATCH_BYTES of them."""
    return max(1, SMOTE_BATCH_BYTES // (length * n_features * 4))


def estimate_bytes(n_in: int, added: int, length: int, n_features: int, k_neighbors: int,
                   batch: int | None = None, rows: int = 0) -> int:
    """Peak bytes a synthesiser needs for ``n_in`` windows entering it and ``added`` synthetic ones.

    The flattened input (n_in · L · F · 4); imbalanced-learn's copy of it and its stacked output (n_in + the
    windows made in one call); those windows, built in float64 (steps × differences) before the cast, about 4
    windows' worth each; the output rows every synthetic window is copied into; the neighbour search's indices
    and distances; and the ``rows`` training rows carried into the output with their bookkeeping.
    ``batch``: windows made per call (SMOTE), else all ``added`` at once.
    """
    window = length * n_features * 4
    made = added if batch is None else min(added, batch)
    return window * (3 * n_in + added + 4 * made) + 16 * (k_neighbors + 1) * n_in + rows * (n_features * 4 + 16)


def _entering(train: WindowSet, cfg: ResampleConfig, seed: int, added: int) -> tuple[np.ndarray, Info]:
    """Indices of the windows handed to the sampler, within ``memory_budget_mb``."""
    pos_idx, neg_idx = np.flatnonzero(train.y == 1), np.flatnonzero(train.y == 0)
    k = max(cfg.k_neighbors, cfg.m_neighbors if cfg.strategy == "borderline_smote" else 0)
    batch = smote_batch(train.length, train.n_features) if cfg.strategy == "smote" else None
    # len(train.rows) bounds the rows carried over: only those that training windows read are.
    need = lambda n_neg: estimate_bytes(len(pos_idx) + n_neg, added, train.length, train.n_features, k,  # noqa: E731
                                        batch, len(train.rows))
    budget = cfg.memory_budget_mb * MB
    # imbalanced-learn insists on two classes, so SMOTE gets one negative window for company.
    wanted = len(neg_idx) if cfg.strategy in READS_MAJORITY else 1
    if need(wanted) <= budget:
        chosen = neg_idx[:wanted]
    else:
        least = 1
        if cfg.over_budget == "refuse" or need(least) > budget:
            raise DataError(_over_budget(train, cfg, need(wanted), need(least), added))
        n_neg = least
        while n_neg < wanted and need(min(wanted, 2 * n_neg)) <= budget:  # grow by doubling, then bisect
            n_neg = min(wanted, 2 * n_neg)
        hi = min(wanted, 2 * n_neg)
        while hi - n_neg > 1:
            mid = (n_neg + hi) // 2
            n_neg, hi = (mid, hi) if need(mid) <= budget else (n_neg, mid)
        chosen = np.sort(np.random.default_rng(seed).choice(neg_idx, n_neg, replace=False))
    entered = np.sort(np.concatenate([pos_idx, chosen]))
    info: Info = {"sampler_windows": len(entered), "memory_estimate_mb": round(need(len(chosen)) / MB, 1)}
    if len(chosen) < wanted:
        info["majority_in_sampler"] = len(chosen)
    return entered, info


def _over_budget(train: WindowSet, cfg: ResampleConfig, full: int, least: int, added: int) -> str:
    shape = f"{len(train)} training windows of {train.length}×{train.n_features}"
    if cfg.over_budget == "refuse" and least <= cfg.memory_budget_mb * MB:
        return (f"resample.strategy={cfg.strategy} needs about {math.ceil(full / MB)} MB for {shape} "
                f"({added} synthetic), over resample.memory_budget_mb={cfg.memory_budget_mb:g}. Raise "
                f"resample.memory_budget_mb to at least {math.ceil(full / MB)}, or set resample.over_budget=subsample "
                "to let only a sample of the majority into the sampler")
    return (f"resample.strategy={cfg.strategy} needs at least {math.ceil(least / MB)} MB for {shape} even with "
            f"the fewest majority windows, to synthesise {added} windows; over resample.memory_budget_mb="
            f"{cfg.memory_budget_mb:g}. Raise resample.memory_budget_mb to at least {math.ceil(least / MB)}, or lower "
            "resample.sampling_strategy to synthesise fewer windows")


def _sampler(cfg: ResampleConfig, seed: int, target: dict[int, int]):
    from imblearn.combine import SMOTEENN, SMOTETomek
    from imblearn.over_sampling import ADASYN, SMOTE, BorderlineSMOTE

    k = cfg.k_neighbors
    if cfg.strategy == "adasyn":
        return ADASYN(sampling_strategy=target, n_neighbors=k, random_state=seed)
    if cfg.strategy == "borderline_smote":
        return BorderlineSMOTE(sampling_strategy=target, k_neighbors=k, m_neighbors=cfg.m_neighbors,
                               random_state=seed)
    smote = SMOTE(sampling_strategy=target, k_neighbors=k, random_state=seed)
    if cfg.strategy == "smote_tomek":
        return SMOTETomek(smote=smote, random_state=seed)
    if cfg.strategy == "smote_enn":
        return SMOTEENN(smote=smote, random_state=seed)
    return smote


def _kept(sampler, n_out: int) -> np.ndarray:
    """Indices into (sampler input ; synthetic windows) of what the sampler returned, in its order."""
    for cleaner in ("tomek_", "enn_"):  # SMOTE-Tomek and SMOTE-ENN clean SMOTE's output
        if hasattr(sampler, cleaner):
            return np.asarray(getattr(sampler, cleaner).sample_indices_, np.int64)
    return np.arange(n_out)


def _explain(cfg: ResampleConfig, exc: Exception, pos: int, added: int) -> str:
    """imbalanced-learn's refusal, said in terms of the fold and the settings that change it."""
    text, k = str(exc), cfg.k_neighbors
    if "No samples will be generated" in text:
        return (f"ADASYN would synthesise no window in this fold: it shares the {added} windows asked for among the "
                f"{pos} positive training windows by how many of their {k} nearest neighbours are negative, and "
                "every share rounds to 0. Raise resample.sampling_strategy or use resample.strategy=smote")
    if "majority class" in text and "ADASYN" in text:
        return (f"ADASYN found no negative window among the {k} nearest neighbours of any of the {pos} positive "
                "training windows, so it has no hard examples to weight. Use resample.strategy=smote")
    return f"resample.strategy={cfg.strategy}: imbalanced-learn refused this fold: {text}"


def _synthesise(train: WindowSet, cfg: ResampleConfig, seed: int, info: Info) -> Resampled:
    neg, pos = _counts(train.y)
    added = over_target(neg, pos, cfg.ratio())
    if added <= 0:
        return _unchanged(train, info, cfg.ratio())
    if pos < cfg.k_neighbors + 1:
        return _fallback(train, cfg, info, f"{NAMES[cfg.strategy]} needs more positive training windows than "
                                           f"k_neighbors={cfg.k_neighbors}; this fold has {pos}. Lower "
                                           "resample.k_neighbors or use fewer folds", to="class_weight")
    entered, memory = _entering(train, cfg, seed, added)
    x = train.gather(entered).reshape(len(entered), -1)  # (n_in, L·F): the only flattened copy
    y = train.y[entered]
    if cfg.strategy == "smote":
        out = _smote_in_batches(train, cfg, seed, x, y, added)
    else:
        sampler = _sampler(cfg, seed, {1: pos + added})
        try:
            x_res, _ = sampler.fit_resample(x, y)
        except (ValueError, RuntimeError) as exc:
            return _fallback(train, cfg, info, _explain(cfg, exc, pos, added), to="class_weight")
        del x
        kept = _kept(sampler, len(x_res))
        out = _assemble(train, _originals(len(train), entered, kept), _synthetic_part(x_res, kept, len(entered)))
    made = int(out.synthetic.sum() - train.synthetic.sum())
    result = {**_after(info, out, made), **memory}
    if made == 0:
        result["note"] = f"{NAMES[cfg.strategy]} synthesised nothing (no positive window near the border)"
    if len(out) - made < len(train):
        result["removed"] = len(train) - (len(out) - made)
    return Resampled(out, None, result)


def _smote_in_batches(train: WindowSet, cfg: ResampleConfig, seed: int, x: np.ndarray, y: np.ndarray,
                      added: int) -> WindowSet:
    """SMOTE over the positives, ``smote_batch`` synthetic windows per call, written straight into the output.

    The calls share one random stream, so a single call (small folds) is exactly imbalanced-learn's SMOTE with
    ``random_state=seed``.
    """
    from imblearn.over_sampling import SMOTE

    batch, pos, stream = smote_batch(train.length, train.n_features), int(y.sum()), np.random.RandomState(seed)

    def made():
        for start in range(0, added, batch):
            m = min(batch, added - start)
            sampler = SMOTE(sampling_strategy={1: pos + m}, k_neighbors=cfg.k_neighbors, random_state=stream)
            yield sampler.fit_resample(x, y)[0][len(x):]  # imbalanced-learn appends its windows last

    return _assemble(train, np.arange(len(train)), made(), added)


def _originals(n: int, entered: np.ndarray, kept: np.ndarray) -> np.ndarray:
    """Original windows still there: those that never entered the sampler, and the entered ones it kept.

    ``kept[j]`` says where the sampler's output j came from: entered window ``kept[j]``, or a synthetic one.
    """
    keep = np.ones(n, bool)
    keep[entered] = False
    keep[entered[kept[kept < len(entered)]]] = True
    return np.flatnonzero(keep)


def _synthetic_part(x_res: np.ndarray, kept: np.ndarray, n_in: int) -> list[np.ndarray]:
    is_new = kept >= n_in
    first = int(np.argmax(is_new)) if is_new.any() else len(kept)
    return [x_res[first:] if is_new[first:].all() else x_res[is_new]]  # a view when they come last


def _assemble(train: WindowSet, orig: np.ndarray, blocks, n_new: int | None = None) -> WindowSet:
    """Original windows ``orig`` stay windows over the training rows; synthetic ``blocks`` become new rows.

    Only rows that some kept training window reads are carried over (never validation or test rows). Blocks
    of flattened windows (m, L·F) are copied into the output one by one, so each can be freed after its copy.
    """
    length, f = train.length, train.n_features
    if n_new is None:
        n_new = sum(len(b) for b in blocks)
    mask = training_rows(train.ends[orig], length, len(train.rows))
    n_rows = int(mask.sum())
    rows = np.empty((n_rows + n_new * length, f), np.float32)  # (N_train + n_new·L, F)
    np.compress(mask, train.rows, axis=0, out=rows[:n_rows])
    at = n_rows
    for block in blocks:
        rows[at:at + len(block) * length] = block.reshape(len(block) * length, f)
        at += len(block) * length
    if at != len(rows):
        raise RuntimeError(f"the sampler made {(at - n_rows) // length} windows where {n_new} were expected")
    new_pos = np.cumsum(mask) - 1  # old row index -> compacted row index
    ends = np.concatenate([new_pos[train.ends[orig]], n_rows + np.arange(n_new) * length + length - 1])
    return WindowSet(rows, ends.astype(np.int64), length, np.r_[train.y[orig], np.ones(n_new, np.int8)],
                     np.r_[train.last_seen[orig], np.zeros(n_new, np.int8)],
                     np.r_[train.synthetic[orig], np.ones(n_new, bool)])
