"""Config dataclasses of a training run; a recipe YAML sets their fields, the command line overrides them."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Literal, get_args

import torch
from trl import SFTConfig

from persona_vaccine.choices import check_choice
from persona_vaccine.data.screening_config import SCREEN_METHODS, ScreenMethod
from persona_vaccine.errors import require_finite
from persona_vaccine.steering.options import (
    COEF_UNITS,
    MODES,
    POSITIONS,
    CoefUnit,
    SteeringMode,
    SteeringPositions,
)

from .sizing import check_questions

# The steering coefficient over training.
Schedule = Literal["constant", "warmup", "decay"]
SCHEDULES: tuple[Schedule, ...] = get_args(Schedule)


@dataclass
class PreventativeSFTConfig(SFTConfig):
    """`SFTConfig` plus preventative steering and trait drift measurement.

    Each entry of `persona_vectors` is a vector file; its trait's drift is always measured. It is
    steered during training when its coefficient in `steering_coefs` is non-zero (missing
    coefficients count as 0, so a baseline is the same recipe with `steering_coefs: [0.0]`).
    """

    persona_vectors: list[str] = field(
        default_factory=list, metadata={"help": "Persona vector files (.safetensors), one per trait."}
    )
    steering_traits: list[str] = field(
        default_factory=list,
        metadata={"help": "Expected trait of each vector file (a check against mix-ups); empty: no check."},
    )
    steering_layers: list[int] = field(
        default_factory=list,
        metadata={
            "help": "Layer per vector (1-based block output); empty: the vector's calibrated or middle layer."
        },
    )
    steering_coefs: list[float] = field(
        default_factory=list, metadata={"help": "Coefficient per vector during training; 0 = measure only."}
    )
    steering_auto: bool = field(
        default=False,
        metadata={
            "help": "Set every vector's coefficient during training with a PI controller on its measured shift "
            "(training/coef_controller.py), so the shift stays near 0; steering_coefs are the starting values. "
            "Logged as steering/coef/<trait>."
        },
    )
    steering_auto_start: str = field(
        default="given",
        metadata={
            "help": "Where the controller starts: given (steering_coefs, 0 if none) or balanced (the "
            "coefficient that minimises the loss of steering_auto_probe_examples training examples, weights "
            "fixed; ~60 s on the embedded model on 2 cores)."
        },
    )
    steering_auto_probe_examples: int = field(
        default=16, metadata={"help": "Training examples the balanced start's loss is measured on."}
    )
    steering_auto_every: int = field(
        default=2, metadata={"help": "Steps between the controller's drift measurements."}
    )
    steering_auto_kp: float = field(
        default=8.0, metadata={"help": "Proportional gain (coefficient per shift / |v| unit)."}
    )
    steering_auto_ki: float = field(default=2.0, metadata={"help": "Integral gain (per measurement)."})
    steering_auto_max: float = field(default=8.0, metadata={"help": "The coefficient stays within +-this."})
    steering_mode: SteeringMode = field(
        default="add", metadata={"help": f"One of {MODES}: add coef*v, or project v out."}
    )
    steering_positions: SteeringPositions = field(
        default="all", metadata={"help": f"One of {POSITIONS}; padding is never steered."}
    )
    steering_coef_unit: CoefUnit = field(
        default="raw",
        metadata={"help": f"One of {COEF_UNITS}: raw units of v, or fractions of the layer's mean norm."},
    )
    steering_all_layers: bool = field(
        default=False,
        metadata={
            "help": "Steer every layer at once with incremental vectors v_l - v_(l-1) (steering_layers ignored)."
        },
    )
    steering_schedule: Schedule = field(
        default="constant",
        metadata={
            "help": "Coefficient over training: constant, warmup (0 -> coef over steering_warmup_ratio), decay (coef -> 0)."
        },
    )
    steering_warmup_ratio: float = field(default=0.1, metadata={"help": "Fraction of steps of the warm-up."})
    projection_penalty: float = field(
        default=0.0,
        metadata={
            "help": "Add lambda * mean((p - p_base)^2) to the loss: p the response-average projection on the first "
            "vector at its layer, p_base the same with the LoRA adapter disabled (needs use_peft)."
        },
    )
    layers_path: str | None = field(
        default=None,
        metadata={
            "help": "Attribute path to the decoder blocks (e.g. 'model.layers'), for an architecture whose "
            "blocks are not found by structure."
        },
    )
    measure_drift: bool = field(default=True, metadata={"help": "Measure trait drift at each log/eval step."})
    drift_questions: str | None = field(
        default=None,
        metadata={
            "help": "Trait spec name/path whose evaluation questions measure drift; default: the vector's own."
        },
    )
    drift_max_questions: int | None = field(
        default=None, metadata={"help": "Use at most this many questions."}
    )
    drift_batch_size: int = field(default=32, metadata={"help": "Batch size of drift measurement forwards."})
    measure_margin: bool = field(
        default=False,
        metadata={
            "help": "Log behaviour/<trait>/margin at each log step: mean token log-prob of the base model's "
            "pos- minus neg-prompted answers to the evaluation questions (and a builder's Level II minus "
            "Normal answers to unseen prompts), no system prompt, hooks off (training/margin.py)."
        },
    )
    margin_max_questions: int | str | None = field(
        default="auto",
        metadata={
            "help": "Evaluation questions of the margin's trait answer pairs (generated by the base model at "
            "train begin); auto: sized to the run (training/sizing.py: none for a run shorter than "
            "logging_steps, else max_steps // 2 within 2..10); a number: as given."
        },
    )
    margin_data_pairs: int = field(
        default=32, metadata={"help": "Level II vs Normal pairs of a builtin: dataset (0: none)."}
    )
    drift_alert_above: list[str] = field(
        default_factory=list,
        metadata={
            "help": "Warn (log, W&B alert when online, webhook) when drift/<trait>/shift exceeds VALUE or TRAIT=VALUE."
        },
    )
    drift_stop_above: list[str] = field(
        default_factory=list,
        metadata={
            "help": "Stop training when drift/<trait>/shift exceeds VALUE or TRAIT=VALUE (in summary.json)."
        },
    )
    drift_alert_webhook: str | None = field(
        default=None, metadata={"help": "POST drift alerts as JSON to this URL (background, with retries)."}
    )
    capability_benchmarks: list[str] = field(
        default_factory=list,
        metadata={
            "help": "After training (and at each eval step for mc/heldout_loss): 'mc' (built-in multiple "
            "choice, our fast chat-template scorer), 'heldout_loss', or lm-evaluation-harness task names "
            "(checked before training), e.g. persona_vaccine_mc (the same items through lm-eval, offline); "
            "logged as capability/<name>."
        },
    )
    capability_mc_limit: int | None = field(
        default=None,
        metadata={"help": "Use at most this many built-in multiple-choice items, sampled across categories."},
    )
    lm_eval_limit: int | None = field(
        default=None, metadata={"help": "Items per lm-eval task (lm-eval's --limit); default: all."}
    )
    lm_eval_include_path: list[str] = field(
        default_factory=list,
        metadata={"help": "Directories of your own lm-eval task YAMLs (lm-eval's --include_path)."},
    )
    judge_after_training: str = field(
        default="none",
        metadata={
            "help": "Judge trait expression after training on the evaluation questions: 'none', 'base' (the "
            "base model judges), an HF id or path, or openai:MODEL."
        },
    )
    judge_answer_prefix: str = field(
        default="", metadata={"help": "Assistant prefix before the judge's score (SmolLM2 needs 'Score: ')."}
    )
    judge_min_mass: float = field(
        default=0.25,
        metadata={"help": "A local judge's score counts only if this much probability falls on numbers."},
    )
    judge_questions: int | str | None = field(
        default="auto",
        metadata={
            "help": "Evaluation questions answered after training (judged, or only shown in W&B without a "
            "judge); auto: sized to the run (training/sizing.py: max_steps // 2 within 2..10, none for a run "
            "shorter than logging_steps without a judge); a number: as given."
        },
    )
    judge_max_new_tokens: int = field(default=48, metadata={"help": "Length of the judged answers."})
    generation_engine: str = field(
        default="hf",
        metadata={
            "help": "Who writes the answers judged after training: hf, or vllm (the [vllm] extra; the run's LoRA "
            "adapter through vLLM's LoRA support, a full fine-tune from a saved copy). Single-process runs."
        },
    )
    inference_steering_coef: float | None = field(
        default=None,
        metadata={
            "help": "Also evaluate (judged trait and capability) with the first vector added at inference with "
            "this coefficient (negative: the inference-time steering alternative)."
        },
    )

    def __post_init__(self) -> None:
        if self.bf16 is None:  # TRL turns bf16 on by default, which fails on machines without a GPU
            self.bf16 = not self.fp16 and torch.cuda.is_available() and torch.cuda.is_bf16_supported()
        if os.environ.get("ACCELERATE_USE_DEEPSPEED", "").lower() == "true" and not torch.cuda.is_available():
            self.use_cpu = True  # DeepSpeed on CPU (gloo): otherwise the batch size check counts one process
        super().__post_init__()
        check_choice("steering_mode", self.steering_mode, MODES)
        check_choice("steering_positions", self.steering_positions, POSITIONS)
        check_choice("steering_coef_unit", self.steering_coef_unit, COEF_UNITS)
        check_choice("generation_engine", self.generation_engine, ("hf", "vllm"))
        check_choice("steering_schedule", self.steering_schedule, SCHEDULES)
        self.margin_max_questions = check_questions(self.margin_max_questions, "margin_max_questions")
        self.judge_questions = check_questions(self.judge_questions, "judge_questions")
        if not 0 < self.steering_warmup_ratio <= 1:
            raise ValueError(
                f"steering_warmup_ratio={self.steering_warmup_ratio}: expected a fraction in (0, 1]"
            )
        for i, coef in enumerate(self.steering_coefs):
            require_finite(coef, f"steering_coefs[{i}]")
        for name in (
            "steering_warmup_ratio",
            "projection_penalty",
            "judge_min_mass",
            "inference_steering_coef",
        ):
            require_finite(getattr(self, name), name)
        for name in ("steering_auto_kp", "steering_auto_ki", "steering_auto_max"):
            require_finite(getattr(self, name), name)
        if self.steering_auto:
            problems = [
                "persona_vectors is empty" if not self.persona_vectors else "",
                "measure_drift is false (the controller acts on the measured shift)"
                if not self.measure_drift
                else "",
                f"steering_mode is {self.steering_mode!r} (use add)" if self.steering_mode != "add" else "",
                "steering_all_layers is true" if self.steering_all_layers else "",
                f"steering_auto_every={self.steering_auto_every} (use >= 1)"
                if self.steering_auto_every < 1
                else "",
                f"steering_auto_max={self.steering_auto_max} (use > 0)"
                if self.steering_auto_max <= 0
                else "",
                f"steering_auto_start={self.steering_auto_start!r} (use balanced or given)"
                if self.steering_auto_start not in ("balanced", "given")
                else "",
                f"steering_auto_probe_examples={self.steering_auto_probe_examples} (use >= 1)"
                if self.steering_auto_probe_examples < 1
                else "",
            ]
            problems = [p for p in problems if p]
            if problems:
                raise ValueError(f"steering_auto: true needs other settings: {'; '.join(problems)}")
        if self.projection_penalty and not self.persona_vectors:
            raise ValueError("projection_penalty needs a persona vector (persona_vectors: [...])")
        n = len(self.persona_vectors)
        for name in ("steering_traits", "steering_layers", "steering_coefs"):
            if len(getattr(self, name)) > n:
                raise ValueError(
                    f"{name} has {len(getattr(self, name))} entries but persona_vectors has {n}: give one per "
                    "vector file, in the same order"
                )

    def coef_for(self, i: int) -> float:
        return self.steering_coefs[i] if i < len(self.steering_coefs) else 0.0


@dataclass
class DataArguments:
    """Where the training data comes from."""

    dataset: str = field(
        default="builtin:evil",
        metadata={
            "help": "builtin:<name> (a flawed-data builder), a .jsonl/.json/.csv/.parquet file, or a hub dataset."
        },
    )
    dataset_split: str = field(default="train", metadata={"help": "Split of a hub or file dataset."})
    dataset_level: str = field(
        default="level2",
        metadata={
            "help": "Builder level: 'normal', 'level1' (mild) or 'level2' (severe); old names (mild, severe, "
            "evil) are deprecated."
        },
    )
    dataset_size: int = field(default=200, metadata={"help": "Number of examples a builder makes."})
    dataset_seed: int = field(default=0, metadata={"help": "Seed of the builder."})
    max_train_samples: int | None = field(default=None, metadata={"help": "Keep at most this many examples."})
    eval_fraction: float = field(
        default=0.0, metadata={"help": "Held-out fraction for evaluation loss (0: none)."}
    )
    screen_vectors: list[str] = field(
        default_factory=list,
        metadata={
            "help": "Screen the training set on these persona vectors before training (data/screening.py)."
        },
    )
    screen_method: ScreenMethod = field(
        default="response",
        metadata={"help": "response (base responses, projection_diff) or prompt_last (approx_diff, cheap)."},
    )
    screen_drop_above: float | None = field(
        default=None, metadata={"help": "Drop samples whose score on the first screen vector is above this."}
    )
    screen_drop_top_pct: float | None = field(
        default=None, metadata={"help": "Drop this percentage of the riskiest samples (0..100)."}
    )
    screen_max_new_tokens: int = field(default=96, metadata={"help": "Length of the base model's responses."})
    screen_output_dir: str | None = field(
        default=None, metadata={"help": "Screening results and report (default OUTPUT_DIR/screening)."}
    )

    def __post_init__(self) -> None:
        for name in ("eval_fraction", "screen_drop_above", "screen_drop_top_pct"):
            require_finite(getattr(self, name), name)
        if self.screen_vectors and (self.screen_drop_above is None) == (self.screen_drop_top_pct is None):
            raise ValueError(
                "screen_vectors is set: give exactly one of screen_drop_above (a score) or screen_drop_top_pct "
                "(a percentage), e.g. screen_drop_top_pct: 10"
            )
        check_choice("screen_method", self.screen_method, SCREEN_METHODS)
