"""The config of persona vector extraction (`launch.py extract --field value`, an extraction recipe's fields)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from persona_vaccine.errors import UserError


class ExtractionConfigError(UserError, ValueError):
    """A setting of the extraction is out of range; the message names the field and what it takes."""


JUDGE_MODES = ("auto", "logprobs", "numbers", "sample")


@dataclass
class ExtractionConfig:
    trait: str = field(
        default="evil",
        metadata={"help": "A built-in trait name (see the trait list command) or a trait spec JSON file."},
    )
    model_name_or_path: str = field(
        default="smollm2-135m",
        metadata={"help": "HF id, local path, or 'smollm2-135m' (the embedded model); --model works too."},
    )
    output_dir: str = field(
        default="runs/vectors",
        metadata={"help": "Vectors go to OUTPUT_DIR/TRAIT/ (response_avg.safetensors, ...)."},
    )
    samples_per_prompt: int = field(
        default=1, metadata={"help": "Responses per (instruction, question) pair and polarity."}
    )
    max_new_tokens: int = field(default=64, metadata={"help": "Length of each generated response."})
    temperature: float = field(default=1.0, metadata={"help": "Sampling temperature of the responses."})
    top_p: float = field(default=1.0, metadata={"help": "Nucleus sampling of the responses."})
    batch_size: int = field(default=32, metadata={"help": "Generation batch size."})
    activation_batch_size: int = field(
        default=16, metadata={"help": "Batch size of the activation forwards."}
    )
    max_questions: int | None = field(
        default=None, metadata={"help": "Use at most this many extraction questions (default: all)."}
    )
    generation_engine: str = field(
        default="hf",
        metadata={
            "help": "Who generates the answers: hf (Hugging Face generate), vllm (the [vllm] extra; steered "
            "calibration answers too) or openai:MODEL (any OpenAI-compatible server at --generation_base_url, "
            "unsteered answers only). Activations are always read with the Hugging Face model."
        },
    )
    generation_dtype: str | None = field(
        default=None,
        metadata={
            "help": "generation_engine vllm: the dtype of its weights (default: dtype; bfloat16 is ~2x faster)."
        },
    )
    generation_base_url: str | None = field(
        default=None, metadata={"help": "Base URL of the server for generation_engine openai:MODEL."}
    )
    dtype: str = field(default="float32", metadata={"help": "Model dtype (float32, bfloat16, float16)."})
    seed: int = field(default=0, metadata={"help": "Random seed of the sampling."})
    trust_remote_code: bool = field(
        default=False, metadata={"help": "Allow the model's own code from the hub."}
    )
    layers_path: str | None = field(
        default=None,
        metadata={
            "help": "Attribute path to the decoder blocks (e.g. 'model.layers'), where structure can't tell."
        },
    )
    # judge filtering (docs/method.md section 2); judge "none" keeps every response
    judge: str = field(
        default="none",
        metadata={
            "help": "Filter responses with a judge: none (keep all), self, an HF id or path, or openai:MODEL."
        },
    )
    judge_base_url: str | None = field(
        default=None, metadata={"help": "OpenAI-compatible endpoint of an openai:MODEL judge."}
    )
    judge_mode: str = field(
        default="auto", metadata={"help": "auto, logprobs, numbers or sample: how the judge's score is read."}
    )
    judge_answer_prefix: str = field(
        default="",
        metadata={"help": "Assistant prefix before the judge's score (e.g. 'Score: ' for small judges)."},
    )
    judge_batch_size: int = field(default=8, metadata={"help": "Judge batch size."})
    judge_min_mass: float = field(
        default=0.25,
        metadata={"help": "A local judge's score counts only if this much probability falls on numbers."},
    )
    trait_threshold: float = field(
        default=50.0,
        metadata={"help": "Keep positive responses judged above (negative: below) this trait score."},
    )
    coherence_threshold: float = field(
        default=50.0, metadata={"help": "Keep responses judged at least this coherent."}
    )
    auto_thresholds: bool = field(
        default=False,
        metadata={"help": "Weak judges: trait threshold = pooled median, coherence = lower quartile."},
    )
    min_kept: int = field(
        default=5, metadata={"help": "Fail when fewer responses than this are kept per polarity."}
    )
    # calibration (needs a judge): steer each layer over a coefficient grid on the evaluation questions
    calibrate: bool = field(
        default=False,
        metadata={
            "help": "Steer each layer over a coefficient grid on the evaluation questions (needs a judge)."
        },
    )
    calibration_layers: str = field(
        default="",
        metadata={"help": "Comma-separated 1-based layers to calibrate; empty: every tenth of the stack."},
    )
    calibration_coefs: str = field(
        default="1,2,4", metadata={"help": "Comma-separated coefficients of the calibration grid."}
    )
    calibration_coef_unit: str = field(
        default="raw", metadata={"help": "raw or norm_fraction: units of the calibration coefficients."}
    )
    calibration_questions: int = field(
        default=10, metadata={"help": "Evaluation questions answered per calibration point."}
    )
    calibration_max_new_tokens: int = field(
        default=48, metadata={"help": "Length of the calibration answers."}
    )
    heldout_eval: bool = field(
        default=True,
        metadata={
            "help": "Projection AUC of pos/neg answers to the evaluation questions at the vector's layer."
        },
    )
    incremental: bool = field(
        default=False,
        metadata={"help": "Also save v_l - v_(l-1) (all-layer steering) as response_avg_incremental."},
    )

    def __post_init__(self) -> None:
        problems = []
        if not isinstance(self.max_new_tokens, int) or self.max_new_tokens < 1:
            problems.append(f"max_new_tokens={self.max_new_tokens!r}: must be a positive number of tokens")
        for name in ("samples_per_prompt", "batch_size", "activation_batch_size", "judge_batch_size"):
            if not isinstance(getattr(self, name), int) or getattr(self, name) < 1:
                problems.append(f"{name}={getattr(self, name)!r}: must be a positive integer")
        if self.max_questions is not None and self.max_questions < 1:
            problems.append(f"max_questions={self.max_questions!r}: must be a positive integer (or unset)")
        if self.temperature < 0:
            problems.append(f"temperature={self.temperature!r}: must be >= 0 (0 decodes greedily)")
        if not 0 < self.top_p <= 1:
            problems.append(f"top_p={self.top_p!r}: must be within (0, 1]")
        if self.judge_mode not in JUDGE_MODES:
            problems.append(f"judge_mode={self.judge_mode!r}: expected one of {', '.join(JUDGE_MODES)}")
        if str(self.judge).startswith("openai:") and self.judge_mode == "numbers":
            problems.append(
                "judge_mode='numbers' is for local judges; openai: judges take auto, logprobs, sample"
            )
        if not 0 <= self.judge_min_mass <= 1:
            problems.append(f"judge_min_mass={self.judge_min_mass!r}: must be within 0..1")
        engine = str(self.generation_engine)
        if engine not in ("hf", "vllm") and not (engine.startswith("openai:") and len(engine) > 7):
            problems.append(
                f"generation_engine={engine!r}: expected hf, vllm or openai:MODEL (an OpenAI-compatible server)"
            )
        if problems:
            raise ExtractionConfigError("; ".join(problems))

    def trait_dir(self, trait: str) -> Path:
        return Path(self.output_dir) / trait
