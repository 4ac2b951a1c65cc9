"""The one configuration tree. Flows take it as their parameter, the CLI fills it, MLflow logs it flattened.

Every hyperparameter has its default here and nowhere else.
"""
from __future__ import annotations

import warnings
from pathlib import Path
from typing import Annotated, Any, Literal, get_args

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
    label_delay: int | Literal["never"] | None = Field(
        None,
        description="How many rows after row t its label (or event) becomes known, or 'never'. The persistence "
        "baseline, and anything else that reads past labels, reads only labels known when the window closes. "
        "null (default) is chosen per mode: event mode 0 (a measured event, such as a PM2.5 reading, is known at "
        "once); label mode 'never' (labels an engineer assigns afterwards are not there at prediction time). In "
        "label mode the window's own label is never read: the latest label it may read is row "
        "t - max(label_delay, label_lookahead + 1). With 'never' persistence has nothing to read and predicts the "
        "training base rate (it becomes the prior).",
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
    near_constant: Literal["drop", "keep"] = Field(
        "drop", description="Features the contract flags as near-constant (one value in at least 95% of rows, "
        "and distinct values in at most 10% of them): drop them from the features, or keep them. Scaled, such a "
        "feature is a row of zeros with rare spikes of many standard deviations.",
    )

    @model_validator(mode="after")
    def _one_target(self) -> DataConfig:
        if self.label_col and self.event_col:
            raise ValueError("give either data.label_col or data.event_col, not both")
        if self.min_prevalence > self.max_prevalence:
            raise ValueError("data.min_prevalence must not exceed data.max_prevalence")
        if isinstance(self.label_delay, int) and self.label_delay < 0:
            raise ValueError(f"data.label_delay must be >= 0 rows or 'never', got {self.label_delay}")
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

    @property
    def known_after(self) -> int | None:
        """label_delay resolved per mode: rows after row t its label is known, or None for never."""
        delay = self.label_delay if self.label_delay is not None else (0 if self.mode == "event" else "never")
        if delay == "never":
            return None
        if delay < 0:
            raise ValueError(f"data.label_delay must be >= 0 rows or 'never', got {delay}")
        return int(delay)


class WindowConfig(_Section):
    """How many consecutive rows one window holds."""

    length: Annotated[int, Field(ge=1)] | Literal["auto"] = Field(
        24, description="Window length L in rows, or 'auto': the first lag where the autocorrelation of the "
        "target and the features (max of the target's lag and the features' median lag) falls inside the 95% "
        "band, read only from rows before the first test block, clipped to auto_min … auto_max.",
    )
    max_gap: float | str | None = Field(
        None,
        description="Drop windows spanning a time gap larger than this (a number for integer time, "
        "a pandas Timedelta string such as '2h' for datetimes).",
    )
    auto_min: int = Field(8, ge=1, description="length=auto: the shortest window it may suggest.")
    auto_max: int = Field(256, ge=1, description="length=auto: the longest window it may suggest (and the "
                          "longest lag whose autocorrelation is computed).")

    @model_validator(mode="after")
    def _auto_range(self) -> WindowConfig:
        if self.auto_min > self.auto_max:
            raise ValueError("window.auto_min must not exceed window.auto_max")
        return self

    @property
    def min_length(self) -> int:
        """The length, or the shortest 'auto' may resolve to (what checks made before resolving can assume)."""
        return self.auto_min if self.length == "auto" else self.length


class SplitConfig(_Section):
    """Walk-forward folds, their validation slices, purge and embargo."""

    by: Literal["time", "entity"] = Field("time", description="Cut on the time axis, or by entity in order of appearance.")
    folds: int = Field(3, ge=1, description="Number of walk-forward folds K (the data is cut into K+1 blocks).")
    scheme: Literal["expanding", "sliding"] = Field(
        "expanding", description="Expanding: train on every earlier block. Sliding: only the previous one."
    )
    val_fraction: float = Field(
        0.2, gt=0, lt=1, description="Share of each training part kept for validation (early stopping and the "
        "learning-rate schedule): the latest windows before the calibration slice.",
    )
    calibration_fraction: float = Field(
        0.0, ge=0, lt=1,
        description="Latest share of each training part (in time, or entity, order: after the validation slice) "
        "kept to choose the decision threshold on, purged like the validation slice and never used for gradient "
        "steps or early stopping. 0: no calibration slice; the threshold is chosen on the validation slice.",
    )
    embargo: int = Field(0, ge=0, description="Extra rows dropped before each later part, beyond the purge.")

    @model_validator(mode="after")
    def _slices_leave_training(self) -> SplitConfig:
        if self.val_fraction + self.calibration_fraction >= 1:
            raise ValueError("split.val_fraction + split.calibration_fraction must stay below 1: the training "
                             "part needs windows to train on")
        return self


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

    hidden: int = Field(32, ge=1, description="Hidden units per recurrent layer (and per direction).")
    layers: int = Field(1, ge=1, description="Stacked recurrent layers.")
    dropout: float = Field(0.2, ge=0, lt=1, description="Dropout between layers and before the head.")
    forget_bias: float = Field(
        1.0, description="Initial forget-gate bias (1.0 eases gradient flow early on). LSTM only: a GRU has no "
        "forget gate and ignores it.",
    )
    cell: Literal["lstm", "gru"] = Field("lstm", description="Recurrent cell: LSTM, or GRU (fewer weights, no cell state).")
    pooling: Literal["last", "attention_additive", "attention_dot"] = Field(
        "last",
        description="What the head reads. last: the state after the window's last row. attention_additive "
        "(Bahdanau): a context vector weighting every step's state by softmax(v·tanh(W h_t + b)). attention_dot "
        "(Luong): weights softmax(h_t · h_last). The attention weights are plotted with each run.",
    )
    bidirectional: bool = Field(
        False,
        description="Also read each window backwards and join both directions' states (twice the head's input). "
        "It reads only the window's own rows, so it sees nothing past the window's end in either mode.",
    )
    recurrent_dropout: float = Field(
        0.0, ge=0, lt=1,
        description="Variational (Gal & Ghahramani) dropout on the recurrent state: one mask per window, the same "
        "at every time step. Above 0, training steps through time in Python (slower); scoring stays on the "
        "fused kernel.",
    )
    layer_norm: bool = Field(
        False, description="LayerNorm on each layer's output sequence (over the hidden units at every time step), "
        "before the next layer or the head; not inside the cell.",
    )
    residual: bool = Field(
        False, description="Add each stacked layer's input to its output from the second layer on (equal widths); "
        "no effect with one layer.",
    )
    augment_noise_std: float = Field(
        0.1, ge=0,
        description="Gaussian noise (in scaled units: standard deviations of each feature) added to training "
        "windows only; validation, test and scoring never see it.",
    )
    head_summaries: bool = Field(
        True,
        description="Window-summary head: the output layer also reads per-feature summaries of each window "
        "(head_stats: by default the six the logistic baseline is fitted on), joined with the last state (or the "
        "attention context). False: the head reads the recurrent state only.",
    )
    head_stats: list[Literal["last", "mean", "std", "min", "max", "change"]] = Field(
        default_factory=lambda: ["last", "mean", "std", "min", "max", "change"],
        description="head_summaries: the per-feature window statistics the head reads, in this order: the logistic "
        "baseline's six (change is its least-squares slope stretched over the window). Against the three "
        "[mean, last, change] with the same logistic start: Beijing +0.05 PR-AUC, C-MAPSS -0.003, over three seeds "
        "(benchmarks/README.md, 'The logistic start').",
    )
    head_init: Literal["random", "logistic"] = Field(
        "logistic",
        description="head_summaries: how the head starts. logistic: as the logistic baseline (a class-balanced "
        "logistic regression on the training windows' summaries, C=1, fitted by scikit-learn), the recurrent "
        "state's weights at zero; that start is evaluation 0 of early stopping and stays the model unless training "
        "beats it on validation, so the network beats the logistic baseline only where the order of the rows adds "
        "something. random: PyTorch's initialisation. Measured: benchmarks/README.md, 'The logistic start'.",
    )
    ensemble_seeds: int = Field(
        1, ge=1,
        description="Seed ensemble: this many LSTMs trained on the same windows from seeds train.seed, "
        "train.seed+1, ... (initial weights, batch order, noise), their probabilities averaged; each costs one "
        "network's training time. 1: one network. With resample.strategy=balanced_bagging the members already "
        "differ in seed and draw, and this is not used.",
    )


class TrainConfig(_Section):
    """The optimisation loop. Its budget is counted in optimiser steps, so small and large data both train enough."""

    epochs: int = Field(
        20, ge=1, description="Passes over the training windows that make the step budget (epochs × steps per "
        "epoch), raised to min_steps when the data is small.",
    )
    min_steps: int = Field(
        1500, ge=0, description="Floor of the step budget: a fold with few windows makes more passes instead of "
        "stopping after a few hundred steps.",
    )
    batch_size: int = Field(256, ge=1, description="Windows per optimisation step.")
    lr: float = Field(
        3e-3, gt=0, description="AdamW peak learning rate (of the cosine schedule). 3e-3 over 1e-3, measured over "
        "seeds on benchmarks.quality's four sets: order-only +0.069 PR-AUC, Beijing +0.026, C-MAPSS +0.003; the "
        "summary set (-0.011) and the published protocol (-0.016 F1) moved within their seed noise "
        "(benchmarks/README.md, 'The learning rate').",
    )
    weight_decay: float = Field(1e-2, ge=0, description="AdamW weight decay.")
    clip_norm: float = Field(1.0, gt=0, description="Gradient-norm clipping.")
    schedule: Literal["cosine", "plateau", "constant"] = Field(
        "cosine", description="Learning rate over the step budget. cosine: linear warmup, then cosine decay to "
        "zero at the end of the budget. plateau: ReduceLROnPlateau on the selection criterion, checked at each "
        "evaluation. constant: lr throughout.",
    )
    warmup_fraction: float = Field(0.05, ge=0, lt=1, description="schedule=cosine: share of the budget spent warming up.")
    evaluations: int = Field(
        30, ge=1, description="Validation evaluations over the step budget (one every budget/evaluations steps); "
        "patience and lr_patience count them.",
    )
    patience: int = Field(10, ge=1, description="Early stopping: evaluations without a better selection criterion.")
    lr_patience: int = Field(3, ge=0, description="schedule=plateau: evaluations without improvement before the rate drops.")
    lr_factor: float = Field(0.5, gt=0, lt=1, description="schedule=plateau: factor the rate drops by.")
    select_on: Literal["val_loss", "val_pr_auc"] = Field(
        "val_loss", description="What early stopping and the kept weights read on the validation slice: the "
        "training loss there (positives weighted as in training: loss_weight or the resampler's pos_weight), or "
        "its PR-AUC averaged over the last three evaluations. Either falls back to the loss when the slice has "
        "no positives. The weighted loss over the unweighted one, with the logistic start: Beijing +0.015 "
        "PR-AUC, C-MAPSS unchanged (benchmarks/README.md, 'The logistic start').",
    )
    ema_decay: float | None = Field(
        None, ge=0, lt=1, description="Weight averaging: validation, the kept weights and the final model use an "
        "exponential moving average of the weights with this per-step decay; null: the raw weights.",
    )
    loss_weight: Literal["none", "balanced"] = Field(
        "balanced", description="balanced: positives weigh negatives/positives in the loss (the baselines' balanced "
        "class weights); none: every window weighs 1. resample.strategy=class_weight sets the weight itself.",
    )
    device: Literal["auto", "cpu", "cuda"] = Field("auto", description="auto: CUDA (bf16 autocast) when present.")
    seed: int = Field(42, description="Seeds numpy, torch and the resampler.")

    @model_validator(mode="after")
    def _patience_order(self) -> TrainConfig:
        if self.schedule == "plateau" and self.lr_patience >= self.patience:
            raise ValueError("train.lr_patience must be below train.patience: the rate must get its chance to "
                             "drop before early stopping ends the run")
        return self


class EvaluateConfig(_Section):
    """Scoring of the LSTM and the baselines on the same test windows."""

    threshold_metric: Literal["mcc", "f1", "episode_f1"] = Field(
        "mcc", description="Metric the validation threshold maximises. episode_f1: the harmonic mean of episode "
        "recall and the share of alarm episodes that are not false alarms, on the validation (or calibration) "
        "windows; where no row labels are at hand (the final model's held-out slice) it falls back to window f1.",
    )
    episode_zone_rows: int | None = Field(
        None, ge=1,
        description="Episode metrics: the detection zone in which an alarm catches an episode. Event mode: the "
        "rows before the onset (null: the horizon, exactly the windows the episode makes positive). Label mode: "
        "the episode's first rows (null: the whole episode, telemanom's event-level rule).",
    )
    baselines: list[Literal["prior", "persistence", "logistic", "hgb"]] = Field(
        default_factory=lambda: ["prior", "persistence", "logistic", "hgb"],
        description="Baselines scored beside the LSTM.",
    )
    baseline_max_windows: int | None = Field(
        500_000, ge=1,
        description="logistic and hgb are fitted on one shared stratified random sample of at most this many "
        "training windows (their float32 summary features take 24 bytes per window and feature, computed once per "
        "fold), and hgb stops early on a stratified sample of at most this many validation windows; null: all of "
        "them. benchmarks/baselines_curve.py: on 1M synthetic rows both models lose 0.005-0.012 "
        "PR-AUC at 100,000 windows against all of them, so the default stays high.",
    )


class RegisterConfig(_Section):
    """Tracking and registry."""

    experiment: str = Field("lstm-rare-event", description="MLflow experiment name.")
    model_name: str | None = Field(None, description="Registered model name. Default: derived from the data file.")
    enabled: bool = Field(True, description="Register the final model (alias 'challenger').")
    gate: bool = Field(True, description="After registering, let the gate decide whether it becomes 'champion'.")
    gate_margin: float | None = Field(
        None, ge=0,
        description="null (default): the challenger beats a rival (the best baseline, then a comparable champion) "
        "when its mean paired per-fold test PR-AUC gain is positive and it is not worse in more than half of the "
        "folds, or the mean gain reaches one standard error of the per-fold gains. A number: the mean paired gain "
        "must reach it (equality passes).",
    )
    gate_metric: Literal["pr_auc", "onset_pr_auc", "episode_recall", "episode_f1"] = Field(
        "pr_auc", description="The per-fold test metric the gate pairs the challenger and its rivals on: window "
        "PR-AUC (default), or an episode metric (onset PR-AUC, episode recall, episode F1).",
    )


class ExecutionConfig(_Section):
    """Where the tasks of a run execute: in this process one after another, or on a Dask cluster."""

    executor: Literal["local", "dask"] = Field(
        "local", description="local: tasks run one after another in this process. dask: folds run in parallel "
        "on a Dask cluster (the pipeline home must be on storage every worker can read)."
    )
    dask_address: str | None = Field(
        None, description="executor=dask: address of an existing scheduler (tcp://host:8786). Default: start a "
        "LocalCluster of dask_workers processes for this run."
    )
    dask_workers: int = Field(2, ge=1, description="executor=dask without an address: worker processes of the LocalCluster.")
    threads_per_worker: int = Field(
        1, ge=1, description="executor=dask without an address: threads per LocalCluster worker (tasks run at once "
        "per worker)."
    )
    torch_threads: int | None = Field(
        None, ge=1, description="CPU threads torch uses inside the train and evaluate stages. The count changes the "
        "last bits of a sum, so it is set the same on every executor; default: the CPUs the process may run on, "
        "capped by OMP_NUM_THREADS when that is set."
    )


class TuneConfig(_Section):
    """Hyperparameter search (``lstm-pipeline tune``): Optuna's TPE sampler seeded from train.seed, a median
    pruner stepping fold by fold, and the mean validation PR-AUC over inner walk-forward folds as the objective.
    The inner folds are cut from the windows before the first outer test block only (nested walk-forward), so
    no window that ``train --config best.yaml`` reports a test metric on helped choose the config.

    Each list holds the choices for one field; an empty list (or null range) keeps the field as configured.
    The configured value always joins its choices, because the first trial is the configuration as given.
    """

    trials: int = Field(20, ge=1, description="Trials, the first of which is the configuration as given.")
    parallel: int = Field(
        1, ge=1, description="Trials asked from the sampler and trained at once, fold by fold; with "
        "execution.executor=dask they train on the workers in parallel (1: one trial after another).",
    )
    prune_startup: int = Field(
        3, ge=0, description="Trials that must finish before the median pruner may stop one after a fold whose "
        "validation PR-AUC lies below the median of the finished trials at that fold.",
    )
    inner_folds: int = Field(
        2, ge=1, description="Inner walk-forward folds, cut (with purge) from the windows before the first outer "
        "test block; the objective is their mean validation PR-AUC.",
    )
    tuned_on: str | None = Field(
        None, description="Written by tune into its best config: the rows the search read, in words. train repeats "
        "it in its summary.",
    )
    tuned_before: int | None = Field(
        None, description="Written by tune into its best config: where the search stopped reading (split by time: "
        "the boundary time as an integer, ns since epoch for datetimes; by entity: the number of leading entities). "
        "train refuses folds whose first test block starts earlier.",
    )
    hidden: list[int] = Field(default_factory=lambda: [16, 32, 64, 128], description="model.hidden choices.")
    layers: list[int] = Field(default_factory=lambda: [1, 2, 3], description="model.layers choices.")
    dropout: tuple[float, float] | None = Field((0.0, 0.5), description="model.dropout range (uniform).")
    lr: tuple[float, float] | None = Field((1e-4, 1e-2), description="train.lr range (log-uniform).")
    window: list[int] = Field(
        default_factory=lambda: [12, 24, 48, 96],
        description="window.length choices (each length cuts its own windows and folds; 'auto' in window.length "
        "is resolved first and joins them).",
    )
    batch_size: list[int] = Field(default_factory=lambda: [64, 128, 256], description="train.batch_size choices.")
    cell: list[str] = Field(default_factory=lambda: ["lstm", "gru"], description="model.cell choices.")
    pooling: list[str] = Field(
        default_factory=lambda: ["last", "attention_additive"], description="model.pooling choices."
    )

    @model_validator(mode="after")
    def _valid_space(self) -> TuneConfig:
        for name in ("hidden", "layers", "window", "batch_size"):
            if any(v < 1 for v in getattr(self, name)):
                raise ValueError(f"tune.{name}: every choice must be at least 1")
        if self.dropout is not None and not 0 <= self.dropout[0] <= self.dropout[1] < 1:
            raise ValueError("tune.dropout: give [low, high] with 0 <= low <= high < 1")
        if self.lr is not None and not 0 < self.lr[0] <= self.lr[1]:
            raise ValueError("tune.lr: give [low, high] with 0 < low <= high")
        for name in ("cell", "pooling"):
            field = ModelConfig.model_fields.get(name)
            allowed = get_args(field.annotation) if field is not None else ()
            wrong = [v for v in getattr(self, name) if allowed and v not in allowed]
            if wrong:
                raise ValueError(f"tune.{name}: {wrong} not among {list(allowed)}")
        return self


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
        execution: ExecutionConfig = Field(default_factory=ExecutionConfig)
        tune: TuneConfig = Field(default_factory=TuneConfig)

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

        def with_values(self, values: dict[str, Any]) -> PipelineConfig:
            """The same config with dotted fields replaced (``{'window.length': 50, 'resample.strategy': 'smote'}``),
            validated like any config: the one way a stage derives a config from another."""
            tree = self.model_dump(mode="json")
            for dotted, value in values.items():
                _set_dotted(tree, dotted, value)
            return PipelineConfig.model_validate(tree)


class ScoreConfig(_Section):
    """One batch scoring run: which registered model scores which file, and where the predictions go.

    The contract, window, features and threshold come from the model's own training run, not from here.
    """

    data: str | None = Field(None, description="CSV or Parquet file of raw rows to score; no label or event column needed.")
    model_name: str | None = Field(None, description="Registered model name (the training run's register.model_name).")
    alias: str = Field("champion", description="Registry alias to score with: champion (the gate's choice) or challenger.")
    model_uri: str | None = Field(
        None, description="Score with this model URI instead (models:/NAME/3, models:/NAME@alias, runs:/ID/model); "
        "overrides model_name and alias."
    )
    out: str | None = Field(
        None, description="Predictions file (.parquet, or .csv). Default: predictions/<data file>-<model>-v<version>"
        ".parquet under the pipeline home."
    )
    experiment: str | None = Field(None, description="MLflow experiment of the scoring run. Default: '<model name>-scoring'.")
    log_predictions: bool = Field(
        True, description="Also log the predictions file as an artifact of the scoring run (its path is logged always)."
    )

    def resolved_model_uri(self) -> str:
        """The model to load: ``model_uri``, else ``models:/<model_name>@<alias>``."""
        if self.model_uri:
            return self.model_uri
        if not self.model_name:
            raise ValueError("scoring needs a model: set model_name (with alias) or model_uri")
        return f"models:/{self.model_name}@{self.alias}"


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
        if value is not None:
            _set_dotted(tree, dotted, value)
    return PipelineConfig.model_validate(tree)


def _set_dotted(tree: dict[str, Any], dotted: str, value: Any) -> None:
    """Set ``tree['a']['b'] = value`` for ``dotted='a.b'``, creating the sections on the way."""
    node = tree
    *parents, leaf = dotted.split(".")
    for part in parents:
        node = node.setdefault(part, {})
    node[leaf] = value
