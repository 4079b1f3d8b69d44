"""The config of projection-difference screening (`launch.py screen --field value`, a recipe's fields)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, get_args

from persona_vaccine.steering.generation_engines import check_engine_name

# How a dataset is screened: with the base model's responses, or from the prompt's last token only.
ScreenMethod = Literal["response", "prompt_last"]
SCREEN_METHODS: tuple[ScreenMethod, ...] = get_args(ScreenMethod)

METHODS = SCREEN_METHODS


@dataclass
class ScreenConfig:
    """What to screen, against which vectors, and how (`launch.py screen --field value`)."""

    dataset: str = field(
        default="builtin:evil",
        metadata={"help": "builtin:<name>, a .jsonl/.json/.csv/.parquet file or a hub dataset"},
    )
    dataset_level: str = field(default="level2", metadata={"help": "builder level: normal, level1, level2"})
    dataset_size: int = field(default=200, metadata={"help": "examples a builder makes"})
    dataset_seed: int = field(default=0, metadata={"help": "seed of the builder"})
    dataset_split: str = field(default="train", metadata={"help": "split of a hub dataset"})
    max_samples: int | None = field(default=None, metadata={"help": "screen at most this many samples"})
    vectors: list[str] = field(default_factory=list, metadata={"help": "persona vector files (.safetensors)"})
    layers: list[int] = field(
        default_factory=list, metadata={"help": "layer per vector (default: calibrated or middle layer)"}
    )
    model_name_or_path: str | None = field(
        default=None, metadata={"help": "the base model (default: the first vector's model)"}
    )
    method: ScreenMethod = field(
        default="response",
        metadata={
            "help": "response: generate base responses (projection_diff and approx_diff); "
            "prompt_last: the cheap approximation only (approx_diff, nothing generated)"
        },
    )
    layers_path: str | None = field(
        default=None,
        metadata={"help": "attribute path to the decoder blocks (e.g. 'model.layers') if not found"},
    )
    max_new_tokens: int = field(default=96, metadata={"help": "length of the base model's greedy responses"})
    batch_size: int = field(default=16, metadata={"help": "generation and activation batch size"})
    chunk_size: int = field(default=64, metadata={"help": "samples per written chunk (resume granularity)"})
    output_dir: str = field(default="runs/screen", metadata={"help": "where results and the report go"})
    base_cache_dir: str | None = field(
        default=None,
        metadata={
            "help": "base responses cache, shareable between datasets (default OUTPUT_DIR/base_responses)"
        },
    )
    report_top: int = field(default=30, metadata={"help": "riskiest samples shown in report.html"})
    dtype: str = field(default="float32", metadata={"help": "model dtype"})
    generation_engine: str = field(
        default="hf",
        metadata={
            "help": "who generates the base model's answers (method response): hf, vllm (the [vllm] extra) or "
            "openai:MODEL (an OpenAI-compatible server at generation_base_url)"
        },
    )
    generation_dtype: str | None = field(
        default=None, metadata={"help": "generation_engine vllm: dtype of its weights (default: dtype)"}
    )
    generation_base_url: str | None = field(
        default=None, metadata={"help": "base URL of the server for generation_engine openai:MODEL"}
    )

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise ValueError(f"method {self.method!r}: expected one of {', '.join(METHODS)}")
        if self.batch_size < 1 or self.chunk_size < 1:
            raise ValueError("batch_size and chunk_size must be positive")
        if self.max_new_tokens < 1:
            raise ValueError(f"max_new_tokens={self.max_new_tokens!r}: must be a positive number of tokens")
        check_engine_name(self.generation_engine)

    @property
    def score(self) -> str:
        """The score samples are ranked by."""
        return "projection_diff" if self.method == "response" else "approx_diff"
