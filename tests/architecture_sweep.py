"""Sweep transformers' causal-LM model zoo with tiny random models: discovery, steering, ablation, training.

Run `python tests/architecture_sweep.py [--train] [--json FILE]` to print the table (docs/RESULTS.md,
"Architecture sweep", has its latest results); tests/test_architecture_sweep.py runs the same checks in
the suite.
"""

from __future__ import annotations

import argparse
import contextlib
import inspect
import io
import json
import logging
import math
import sys
import time
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from persona_vaccine.models.layers import block_hidden, config_layer_count, get_decoder_layers, hidden_size  # noqa: E402
from persona_vaccine.steering.hooks import Steerer, SteeringSpec  # noqa: E402
from persona_vaccine.steering.vector import PersonaVector  # noqa: E402

N_LAYERS = 4
VOCAB = 128
MAX_PARAMS = 20_000_000  # with a tokenizer's vocabulary (training) a tiny model still has ~3M
# Size fields set to small values wherever a config class has them.
_SMALL = {
    "hidden_size": 32,
    "intermediate_size": 64,
    "num_hidden_layers": N_LAYERS,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
    "head_dim": 8,
    "max_position_embeddings": 128,
    "n_embd": 32,
    "n_layer": N_LAYERS,
    "n_head": 4,
    "n_inner": 64,
    "n_positions": 128,
    "n_ctx": 128,
    "d_model": 32,
    "num_layers": N_LAYERS,
    "n_layers": N_LAYERS,
    "n_heads": 4,
    "ffn_dim": 64,
    "decoder_layers": N_LAYERS,
    "decoder_attention_heads": 4,
    "decoder_ffn_dim": 64,
    "encoder_layers": 1,
    "encoder_attention_heads": 4,
    "encoder_ffn_dim": 64,
    "moe_intermediate_size": 32,
    "shared_expert_intermediate_size": 32,
    "expert_intermediate_size": 32,
    "num_experts": 4,
    "num_local_experts": 4,
    "n_routed_experts": 4,
    "num_experts_per_tok": 2,
    "moe_topk": 2,
    "n_shared_experts": 1,
    "first_k_dense_replace": 1,
    "kv_lora_rank": 16,
    "q_lora_rank": 16,
    "qk_rope_head_dim": 8,
    "qk_nope_head_dim": 8,
    "v_head_dim": 8,
    "word_embed_proj_dim": 32,
    "embedding_size": 32,
    "rotary_dim": 4,
    "partial_rotary_factor": 0.5,
    "sliding_window": 64,
    "attention_chunk_size": 64,
    "state_size": 8,
    "mamba_d_state": 8,
    "mamba_n_heads": 4,
    "mamba_d_head": 16,
    "mamba_expand": 2,
    "expand": 2,
    "conv_kernel": 4,
    "time_step_rank": 4,
    "num_key_value_groups": 1,
    "linear_num_key_heads": 2,
    "linear_num_value_heads": 4,
    "linear_key_head_dim": 8,
    "linear_value_head_dim": 8,
}


@dataclass
class Result:
    model_type: str
    built: bool = False
    blocks: int | None = None
    expected_blocks: int | None = None
    discovery: bool = False
    steer_changes: bool = False
    restore_exact: bool = False
    ablate: bool = False
    generate_positions: bool | None = None
    train: bool | None = None
    reason: str = ""
    seconds: float = 0.0

    @property
    def passed(self) -> bool:
        """Every check that ran passed (generate_positions None: not run)."""
        core = self.built and self.discovery and self.steer_changes and self.restore_exact and self.ablate
        return core and self.generate_positions is not False


def causal_lm_types() -> list[str]:
    from transformers.models.auto.modeling_auto import MODEL_FOR_CAUSAL_LM_MAPPING_NAMES

    return sorted(MODEL_FOR_CAUSAL_LM_MAPPING_NAMES)


def _small_kwargs(config_class) -> dict:
    try:
        defaults = config_class().to_dict()
    except Exception:  # noqa: BLE001 - some configs need arguments: shrink what the signature names
        defaults = {}
    names = set(defaults) | set(inspect.signature(config_class.__init__).parameters)
    kwargs = {k: v for k, v in _SMALL.items() if k in names}
    for key in ("vocab_size",):
        if key in names:
            kwargs[key] = VOCAB
    for key in ("pad_token_id", "bos_token_id", "eos_token_id", "decoder_start_token_id"):
        if key in names:
            kwargs[key] = {"pad_token_id": 0, "bos_token_id": 1}.get(key, 2)
    for name in ("text_config", "decoder"):
        sub = defaults.get(name)
        if isinstance(sub, dict) and sub.get("model_type"):
            from transformers import AutoConfig

            sub_class = type(AutoConfig.for_model(sub["model_type"]))
            kwargs[name] = {**_small_kwargs(sub_class), "model_type": sub["model_type"]}
    if "is_decoder" in names:
        kwargs["is_decoder"] = True
    return kwargs


def build_tiny(model_type: str, vocab_size: int = VOCAB, seed: int = 0):
    """A tiny random causal LM of `model_type`, or raise."""
    from transformers import AutoConfig, AutoModelForCausalLM

    config_class = type(AutoConfig.for_model(model_type))
    kwargs = _small_kwargs(config_class)
    if vocab_size != VOCAB:
        kwargs = _with_vocab(kwargs, vocab_size)
    config = config_class(**kwargs)
    with torch.device("meta"):
        size = sum(p.numel() for p in AutoModelForCausalLM.from_config(config).parameters())
    if size > MAX_PARAMS:
        raise ValueError(f"the shrunk config still has {size / 1e6:.0f}M parameters")
    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_config(config)
    return model.eval()


def _with_vocab(kwargs: dict, vocab_size: int) -> dict:
    out = dict(kwargs)
    if "vocab_size" in out:
        out["vocab_size"] = vocab_size
    for name in ("text_config", "decoder"):
        if isinstance(out.get(name), dict):
            out[name] = _with_vocab(out[name], vocab_size)
    return out


def random_vector_for(model, seed: int = 0, scale: float = 4.0) -> PersonaVector:
    n, h = len(get_decoder_layers(model)), hidden_size(model)
    g = torch.Generator().manual_seed(seed)
    return PersonaVector(
        trait="probe",
        model_id="tiny",
        hidden_size=h,
        num_layers=n,
        layers={layer: scale * torch.randn(h, generator=g) for layer in range(1, n + 1)},
    )


def _ids(model, batch: int = 2, length: int = 6) -> torch.Tensor:
    vocab = int(getattr(model.config.get_text_config(), "vocab_size", VOCAB) or VOCAB)
    g = torch.Generator().manual_seed(1)
    return torch.randint(3, min(vocab, VOCAB), (batch, length), generator=g)


def _logits(model, ids):
    with torch.no_grad():
        return model(input_ids=ids).logits.float()


def _block_out(model, layer, ids):
    seen = {}
    block = get_decoder_layers(model)[layer - 1]
    handle = block.register_forward_hook(lambda m, a, o: seen.__setitem__("h", block_hidden(o).detach()))
    try:
        with torch.no_grad():
            model(input_ids=ids)
    finally:
        handle.remove()
    return seen["h"]


def check_generate_positions(model, vector, layer: int) -> tuple[bool, str]:
    """Under generate, "response" steers exactly the decode steps' tokens and "prompt" the prompt's."""
    ids = _ids(model, batch=1, length=5)
    new = 3
    counts = {}
    for positions in ("prompt", "response"):
        steerer = Steerer(model, [SteeringSpec(vector, [layer], 1.0, positions=positions)])
        with steerer.active(), torch.no_grad():
            model.generate(
                input_ids=ids, max_new_tokens=new, min_new_tokens=new, do_sample=False, pad_token_id=0
            )
        counts[positions] = steerer.steered_tokens.get("probe", 0)
    # prefill: 5 prompt tokens; decode steps: new - 1 forwards of one response token (cached), or without a
    # cache the prompt again plus the tokens so far
    use_cache = getattr(model.generation_config, "use_cache", True) is not False
    cached = {"prompt": 5, "response": new - 1}
    uncached = {"prompt": 5 * new, "response": sum(range(1, new))}
    if counts in (cached, uncached):  # some models never use a cache, whatever their generation config says
        return True, ""
    return False, f"generate: steered {counts}, expected {cached if use_cache else uncached}"


def check(model_type: str, generate: bool = True) -> Result:
    result = Result(model_type)
    start = time.perf_counter()
    try:
        with warnings.catch_warnings(), contextlib.redirect_stderr(io.StringIO()):
            warnings.simplefilter("ignore")
            _check(model_type, result, generate)
    except Exception as e:  # noqa: BLE001 - the sweep records why
        result.reason = (
            result.reason or f"{type(e).__name__}: {str(e).splitlines()[0][:160] if str(e) else ''}"
        )
    result.seconds = round(time.perf_counter() - start, 2)
    return result


def _check(model_type: str, result: Result, generate: bool) -> None:
    try:
        model = build_tiny(model_type)
        ids = _ids(model)
        plain = _logits(model, ids)
    except Exception as e:
        result.reason = (
            f"can't build or run tiny: {type(e).__name__}: {str(e).splitlines()[0][:140] if str(e) else ''}"
        )
        return
    result.built = True
    result.expected_blocks = config_layer_count(model)
    blocks = get_decoder_layers(model)
    result.blocks = len(blocks)
    result.discovery = result.blocks == result.expected_blocks
    layer = max(1, len(blocks) // 2)
    vector = random_vector_for(model)
    with Steerer(model, [SteeringSpec(vector, [layer], 2.0)]).active():
        steered = _logits(model, ids)
    after = _logits(model, ids)
    result.steer_changes = not torch.allclose(steered, plain)
    result.restore_exact = torch.equal(after, plain)
    with Steerer(model, [SteeringSpec(vector, [layer], 1.0, mode="ablate")]).active():
        out = _block_out(model, layer, ids).float()
    projection = (out @ vector.unit(layer)).abs().max()
    result.ablate = bool(projection <= 1e-4 * max(1.0, float(out.abs().max())))
    if generate:
        try:
            result.generate_positions, why = check_generate_positions(model, vector, layer)
            result.reason = why
        except Exception as e:  # noqa: BLE001 - the check ran and could not steer under generate
            result.generate_positions = False
            result.reason = f"generate: {type(e).__name__}: {str(e).splitlines()[0][:120] if str(e) else ''}"
    if not result.passed and not result.reason:
        failed = [
            k for k in ("discovery", "steer_changes", "restore_exact", "ablate") if not getattr(result, k)
        ] + (["generate_positions"] if result.generate_positions is False else [])
        result.reason = "failed: " + ", ".join(failed)


def check_training(model_type: str, tokenizer, tmp_dir: str | Path) -> tuple[bool, str]:
    """A 2-step preventative LoRA run through PreventativeSFTTrainer on a tiny `model_type`, and the same
    run without steering from a copy of the same weights: the steered run's losses must be finite and its
    first step's loss (LoRA's B starts at 0, so that step is the base weights plus the steering) must differ
    from the unsteered one's, else the steering never reached the training forward."""
    import copy

    from peft import LoraConfig

    from persona_vaccine.data.loading import load_training_dataset
    from persona_vaccine.training.config import PreventativeSFTConfig
    from persona_vaccine.training.trainer import PreventativeSFTTrainer

    try:
        model = build_tiny(model_type, vocab_size=len(tokenizer)).train()
    except Exception as e:  # noqa: BLE001
        return False, f"can't build tiny: {type(e).__name__}"
    if model.config.pad_token_id is None:
        model.config.pad_token_id = tokenizer.pad_token_id
    vector = random_vector_for(model, scale=1.0)
    path = Path(tmp_dir) / f"{model_type}.safetensors"
    vector.save(path)
    dataset = load_training_dataset("builtin:evil", size=4, seed=0)
    losses = {}
    for steered in (True, False):
        args = PreventativeSFTConfig(
            output_dir=str(Path(tmp_dir) / f"{model_type}_{'steered' if steered else 'plain'}"),
            max_steps=2,
            per_device_train_batch_size=2,
            learning_rate=1e-3,
            logging_steps=1,
            save_strategy="no",
            report_to=[],
            persona_vectors=[str(path)] if steered else [],
            steering_traits=["probe"] if steered else [],
            steering_layers=[max(1, vector.num_layers // 2)] if steered else [],
            steering_coefs=[1.0] if steered else [],
            measure_drift=False,
            max_length=128,
            use_cpu=True,
            disable_tqdm=True,
            seed=0,
        )
        trainer = PreventativeSFTTrainer(
            model=copy.deepcopy(model) if steered else model,
            args=args,
            train_dataset=dataset,
            processing_class=tokenizer,
            peft_config=LoraConfig(r=4, lora_alpha=8, target_modules="all-linear"),
        )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            trainer.train()
        losses[steered] = [row["loss"] for row in trainer.state.log_history if "loss" in row]
    steered_losses, plain_losses = losses[True], losses[False]
    if len(steered_losses) != 2 or not all(math.isfinite(x) for x in steered_losses):
        return False, f"losses {steered_losses}"
    if abs(steered_losses[0] - plain_losses[0]) <= 1e-6 * max(1.0, abs(plain_losses[0])):
        return False, f"steering did not change the loss: {steered_losses[0]} steered, {plain_losses[0]} not"
    return True, ""


def sweep(types: list[str] | None = None, generate: bool = True, progress: bool = False) -> list[Result]:
    logging.disable(logging.WARNING)
    results = []
    try:
        for t in types or causal_lm_types():
            results.append(check(t, generate))
            if progress:
                r = results[-1]
                print(
                    f"{t}: {'pass' if r.passed else 'FAIL'} {r.seconds}s {r.reason}",
                    file=sys.stderr,
                    flush=True,
                )
        return results
    finally:
        logging.disable(logging.NOTSET)


def table(results: list[Result]) -> str:
    lines = [
        "| model type | blocks | discovery | steer | restore | ablate | generate positions | train | reason |",
        "|---|---|---|---|---|---|---|---|---|",
    ]

    def mark(value):
        return "-" if value is None else ("yes" if value else "NO")

    for r in results:
        blocks = f"{r.blocks}/{r.expected_blocks}" if r.built else "-"
        cells = [r.discovery, r.steer_changes, r.restore_exact, r.ablate] if r.built else [None] * 4
        lines.append(
            f"| {r.model_type} | {blocks} | "
            + " | ".join(mark(c) for c in cells)
            + f" | {mark(r.generate_positions)} | {mark(r.train)} | {r.reason.replace('|', '/')} |"
        )
    built = [r for r in results if r.built]
    core = [r for r in built if r.discovery and r.steer_changes and r.restore_exact and r.ablate]
    passed = [r for r in built if r.passed]
    lines.append("")
    lines.append(
        f"{len(results)} causal-LM model types; {len(built)} built tiny; {len(core)} of them pass discovery + "
        f"steer + restore + ablate ({100 * len(core) / max(1, len(built)):.1f}%); {len(passed)} pass every "
        f"check that ran, generate positions included ({100 * len(passed) / max(1, len(built)):.1f}%)."
    )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--types", nargs="*", default=None, help="model types (default: all causal LMs)")
    parser.add_argument("--train", action="store_true", help="also run a 2-step preventative LoRA training")
    parser.add_argument("--json", default=None, help="write the results here")
    opts = parser.parse_args(argv)
    torch.set_num_threads(2)
    results = sweep(opts.types, progress=True)
    if opts.train:
        import tempfile

        from persona_vaccine.models.loading import load_tokenizer

        tokenizer = load_tokenizer("smollm2-135m")
        with tempfile.TemporaryDirectory() as tmp:
            for r in results:
                if r.passed:
                    try:
                        r.train, why = check_training(r.model_type, tokenizer, tmp)
                    except Exception as e:  # noqa: BLE001
                        r.train, why = (
                            False,
                            f"{type(e).__name__}: {str(e).splitlines()[0][:120] if str(e) else ''}",
                        )
                    if why:
                        r.reason = (r.reason + "; " if r.reason else "") + f"train: {why}"
    print(table(results))
    if opts.json:
        Path(opts.json).write_text(json.dumps([asdict(r) for r in results], indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
