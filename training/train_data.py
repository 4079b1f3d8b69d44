"""The data of a training run: the recipe's dataset (screened when the recipe says so), chat-formatted and
split, and the clean held-out rows of `capability/heldout_loss`."""

from __future__ import annotations

import json
import logging
from pathlib import Path

from persona_vaccine.data.loading import build_dataset, load_training_dataset, to_prompt_completion
from persona_vaccine.errors import InvalidInput
from persona_vaccine.models.chat import prepare_messages

from .config import DataArguments

logger = logging.getLogger(__name__)


def screen_training_set(dataset, model, tokenizer, data_args: DataArguments, output_dir: Path, model_id: str):
    """The recipe's screening stage: drop risky samples before training; returns (dataset, log)."""
    from persona_vaccine.data.screening import DropRule, ScreenConfig, apply_drop_rule, screen_dataset

    out = Path(data_args.screen_output_dir or output_dir / "screening")
    cfg = ScreenConfig(
        dataset=data_args.dataset,
        dataset_level=data_args.dataset_level,
        dataset_size=len(dataset),
        dataset_seed=data_args.dataset_seed,
        vectors=list(data_args.screen_vectors),
        model_name_or_path=model_id,
        method=data_args.screen_method,
        max_new_tokens=data_args.screen_max_new_tokens,
        output_dir=str(out),
    )
    rows = [{"prompt": ex["prompt"], "completion": ex["completion"]} for ex in dataset]
    _, screened = screen_dataset(cfg, model, tokenizer, rows)
    trait = next(iter(screened[0]["scores"]))
    rule = DropRule(trait, cfg.score, data_args.screen_drop_above, data_args.screen_drop_top_pct)
    dropped, log = apply_drop_rule(screened, rule)
    with (out / "dropped.jsonl").open("w") as f:
        for row in screened:
            if row["index"] in dropped:
                f.write(json.dumps(row) + "\n")
    log["report"] = str(out / "report.html")
    logger.info("screening dropped %d of %d samples (%s)", log["dropped"], log["screened"], log["rule"])
    keep = [i for i in range(len(dataset)) if i not in dropped]
    if not keep:
        raise InvalidInput(
            f"screening dropped every sample ({log['rule']}); raise screen_drop_above or lower the top %"
        )
    return dataset.select(keep), log


def build_datasets(data_args: DataArguments, tokenizer, seed: int, screen=None):
    """(train, eval or None, screening log or None): the recipe's dataset, screened by `screen` when given,
    chat-formatted, split off `eval_fraction` for evaluation."""
    dataset = load_training_dataset(
        data_args.dataset,
        data_args.dataset_split,
        data_args.dataset_level,
        data_args.dataset_size,
        data_args.dataset_seed,
        data_args.max_train_samples,
    )
    screening = None
    if screen is not None:
        dataset, screening = screen(dataset)
    # Templates without a system role get it folded into the first user turn; thinking is switched off.
    dataset = dataset.map(
        lambda ex: {
            "prompt": prepare_messages(tokenizer, ex["prompt"]),
            "chat_template_kwargs": {"enable_thinking": False},
        }
    )
    if data_args.eval_fraction > 0:
        split = dataset.train_test_split(test_size=data_args.eval_fraction, seed=seed)
        return split["train"], split["test"], screening
    return dataset, None, screening


def clean_heldout_rows(data_args: DataArguments, n: int = 48) -> list[dict] | None:
    """Held-out clean data for `capability/heldout_loss`: a builder's normal level with another seed."""
    if not data_args.dataset.startswith("builtin:"):
        return None
    name = data_args.dataset.split(":", 1)[1]
    rows = build_dataset(name, n, seed=data_args.dataset_seed + 1000, level="normal")
    return [to_prompt_completion(r) for r in rows]
