"""The one configuration tree. Flows take it as their parameter, the CLI fills it, MLflow logs it flattened.

Every hyperparameter has its default here and nowhere else.
"""
from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any, Literal, get_args

import yaml
from pydantic import BaseModel, ConfigDict, Field, model_validator


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class DataConfig(_Section):
    """Where the rows are and what each column means."""

    path: str | None = Field(None, description="CSV or Parquet file with one row per time step (and entity).")
    time_col: str = Field("time", description="Time column: datetimes or integer steps.")
    entity_col: str | None = Field(None, description="Optional entity column (machine, station); windows never cross it.")
    features: list[str] | None = Field(
        None, description="Feature columns. Default: every other numeric column."
    )
    label_col: str | None = Field(None, description="Label mode: 0/1 per row; the target of the window ending at t is label[t].")
    event_col: str | None = Field(
        None, description="Event mode: 0/1 per row; the target is 1 if an event occurs in rows t+1 … t+horizon."
    )
    horizon: int = Field(1, ge=1, description="Event mode: how many rows ahead a window warns of an event.")
    label_lookahead: int = Field(
        0,
        ge=0,
        description="Label mode: how many rows past its own a label looks (e.g. 30 for 'fails within 30 cycles'). "
        "Sets the purge width and when a label counts as observed.",
    )
    sep: str = Field(",", min_length=1, description="CSV delimiter (';' for many European spreadsheet exports).")
    max_file_mb: float = Field(
        1024, gt=0, description="Refuse files larger than this many MB: pandas needs several times a file's size in memory."
    )
    missing: Literal["error", "ffill", "drop"] = Field(
        "error",
        description="Missing feature values, handled after validation. error: the contract fails on any. "
        "ffill: carry the entity's latest earlier value forward (at most ffill_limit rows); rows still missing "
        "are dropped. drop: drop every row with a missing feature.",
    )
    ffill_limit: int = Field(3, ge=1, description="missing=ffill: most consecutive rows filled from one earlier value.")
    max_null_fraction: float = Field(
        0.05, ge=0, le=1, description="missing=ffill|drop: largest share of missing values the contract accepts per feature."
    )
    min_prevalence: float = Field(0.0, ge=0, le=1, description="Smallest share of positive rows the contract accepts.")
    max_prevalence: float = Field(
        1.0, ge=0, le=1, description="Largest share of positive rows the contract accepts (above 0.5 it warns anyway)."
    )
    min_positives: int = Field(
        1, ge=0, description="Positive windows every fold's training and test part must hold, or the run stops before training."
    )

    @model_validator(mode="after")
    def _one_target(self) -> DataConfig:
        if self.label_col and self.event_col:
            raise ValueError("give either data.label_col or data.event_col, not both")
        if self.min_prevalence > self.max_prevalence:
            raise ValueError("data.min_prevalence must not exceed data.max_prevalence")
        return self

    @property
    def mode(self) -> Literal["label", "event"]:
        return "event" if self.event_col else "label"

    @property
    def target_col(self) -> str | None:
        return self.event_col or self.label_col

    @property
    def lookahead(self) -> int:
        """Rows past t that decide the target of the window ending at t."""
        return self.horizon if self.mode == "event" else self.label_lookahead


class WindowConfig(_Section):
    """How many consecutive rows one window holds."""

    length: int = Field(24, ge=1, description="Window length L in rows.")
    max_gap: float | str | None = Field(
        None,
        description="Drop windows spanning a time gap larger than this (a number for integer time, "
        "a pandas Timedelta string such as '2h' for datetimes).",
    )


class SplitConfig(_Section):
    """Walk-forward folds, their validation slices, purge and embargo."""

    by: Literal["time", "entity"] = Field("time", description="Cut on the time axis, or by entity in order of appearance.")
    folds: int = Field(3, ge=1, description="Number of walk-forward folds K (the data is cut into K+1 blocks).")
    scheme: Literal["expanding", "sliding"] = Field(
        "expanding", description="Expanding: train on every earlier block. Sliding: only the previous one."
    )
    val_fraction: float = Field(0.2, gt=0, lt=1, description="Latest share of each training part kept for validation.")
    embargo: int = Field(0, ge=0, description="Extra rows dropped before each later part, beyond the purge.")


Strategy = Literal["none", "class_weight", "random_over", "random_under", "smote", "adasyn", "borderline_smote",
                   "smote_tomek", "smote_enn", "balanced_bagging"]
STRATEGIES: tuple[str, ...] = get_args(Strategy)
# Strategies that remove majority windows rather than add minority ones: their natural ratio is 1 (balanced).
UNDER_SAMPLERS = ("random_under", "balanced_bagging")


class ResampleConfig(_Section):
    """Imbalance handling on the training windows of each fold only (never validation, never test)."""

    strategy: Strategy = Field("none", description="Imbalance strategy.")
    sampling_strategy: float | None = Field(
        None, gt=0, le=1,
        description="Minority/majority ratio after resampling, by imbalanced-learn's float rule. "
        "Default: 0.5 for the over-samplers, 1.0 (balanced) for random_under and balanced_bagging.",
    )
    k_neighbors: int = Field(5, ge=1, description="SMOTE family and ADASYN: neighbours used to synthesise a window.")
    m_neighbors: int = Field(10, ge=1, description="borderline_smote: neighbours that decide whether a window is in danger.")
    bagging_estimators: int = Field(5, ge=1, description="balanced_bagging: LSTMs trained and averaged.")
    memory_budget_mb: float = Field(
        2048, gt=0, description="Most memory a synthesising resampler may use (flattened windows, its output and "
        "the neighbour search); see over_budget.",
    )
    over_budget: Literal["subsample", "refuse"] = Field(
        "subsample", description="Over memory_budget_mb: let only the minority and a random sample of the majority "
        "into the sampler (the other majority windows are kept as they are), or refuse with the memory needed.",
    )
    allow_fallback: bool = Field(
        False, description="When a fold cannot be resampled as asked (too few positives for the neighbours, none at "
        "all, ADASYN finding nothing to synthesise), fall back to class_weight (or none) instead of stopping.",
    )

    def ratio(self) -> float:
        """The minority/majority ratio this strategy aims for."""
        if self.sampling_strategy is not None:
            return self.sampling_strategy
        return 1.0 if self.strategy in UNDER_SAMPLERS else 0.5


class ModelConfig(_Section):
    """The network. A checkpoint stores this beside the weights."""

    hidden: int = Field(64, ge=1, description="Hidden units per LSTM layer.")
    layers: int = Field(2, ge=1, description="Stacked LSTM layers.")
    dropout: float = Field(0.2, ge=0, lt=1, description="Dropout between layers and before the head.")
    forget_bias: float = Field(1.0, description="Initial forget-gate bias (1.0 eases gradient flow early on).")


class TrainConfig(_Section):
    """The optimisation loop."""

    epochs: int = Field(20, ge=1, description="Maximum epochs per fold.")
    batch_size: int = Field(256, ge=1, description="Windows per optimisation step.")
    lr: float = Field(1e-3, gt=0, description="AdamW learning rate.")
    weight_decay: float = Field(1e-4, ge=0, description="AdamW weight decay.")
    clip_norm: float = Field(1.0, gt=0, description="Gradient-norm clipping.")
    patience: int = Field(5, ge=1, description="Early stopping: epochs without a better validation PR-AUC.")
    lr_patience: int = Field(2, ge=0, description="ReduceLROnPlateau patience, in epochs.")
    lr_factor: float = Field(0.5, gt=0, lt=1, description="ReduceLROnPlateau factor.")
    device: Literal["auto", "cpu", "cuda"] = Field("auto", description="auto: CUDA (bf16 autocast) when present.")
    seed: int = Field(42, description="Seeds numpy, torch and the resampler.")


class EvaluateConfig(_Section):
    """Scoring of the LSTM and the baselines on the same test windows."""

    threshold_metric: Literal["mcc", "f1"] = Field("mcc", description="Metric the validation threshold maximises.")
    baselines: list[Literal["prior", "persistence", "logistic", "hgb"]] = Field(
        default_factory=lambda: ["prior", "persistence", "logistic", "hgb"],
        description="Baselines scored beside the LSTM.",
    )


class RegisterConfig(_Section):
    """Tracking and registry."""

    experiment: str = Field("lstm-rare-event", description="MLflow experiment name.")
    model_name: str | None = Field(None, description="Registered model name. Default: derived from the data file.")
    enabled: bool = Field(True, description="Register the final model (alias 'challenger').")
    gate: bool = Field(True, description="After registering, let the gate decide whether it becomes 'champion'.")
    gate_margin: float = Field(
        0.0, ge=0, description="Mean test PR-AUC the LSTM must gain over the best baseline to become champion."
    )


# "register" is the design's section name; pydantic warns that it shadows ABCMeta.register, which no
# caller uses. The warning is silenced for this one definition only.
with warnings.catch_warnings():
    warnings.filterwarnings("ignore", message='Field name "register"', category=UserWarning)

    class PipelineConfig(_Section):
        """Everything one pipeline run needs."""

        data: DataConfig = Field(default_factory=DataConfig)
        window: WindowConfig = Field(default_factory=WindowConfig)
        split: SplitConfig = Field(default_factory=SplitConfig)
        resample: ResampleConfig = Field(default_factory=ResampleConfig)
        model: ModelConfig = Field(default_factory=ModelConfig)
        train: TrainConfig = Field(default_factory=TrainConfig)
        evaluate: EvaluateConfig = Field(default_factory=EvaluateConfig)
        register: RegisterConfig = Field(default_factory=RegisterConfig)

        def resolved_model_name(self) -> str:
            """The registry name: explicit, else derived from the data file's stem."""
            if self.register.model_name:
                return self.register.model_name
            stem = Path(self.data.path).stem if self.data.path else "model"
            safe = "".join(c if c.isalnum() or c in "-_" else "-" for c in stem).strip("-") or "model"
            return f"{safe}-lstm"

        def flat(self) -> dict[str, Any]:
            """Dotted keys for MLflow params."""
            return flatten(self.model_dump(mode="json"))


def flatten(tree: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Flatten a nested dict into dotted keys; lists become comma-joined strings."""
    out: dict[str, Any] = {}
    for key, value in tree.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            out.update(flatten(value, f"{name}."))
        elif isinstance(value, list):
            out[name] = ",".join(map(str, value))
        else:
            out[name] = value
    return out


def load_config(path: str | Path | None = None, overrides: dict[str, Any] | None = None) -> PipelineConfig:
    """Read a YAML file mirroring the tree, then apply dotted overrides such as {'train.epochs': 3}."""
    tree: dict[str, Any] = {}
    if path is not None:
        text = Path(path).read_text(encoding="utf-8")
        tree = yaml.safe_load(text) or {}
        if not isinstance(tree, dict):
            raise ValueError(f"{path}: the config must be a mapping with sections such as data:, window:, train:")
    for dotted, value in (overrides or {}).items():
        if value is None:
            continue
        node = tree
        *parents, leaf = dotted.split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
    return PipelineConfig.model_validate(tree)
