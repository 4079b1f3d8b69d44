"""How well the monitor's early warning separates pos- from neg-prompted held-out questions, and how often
the cap guard changes answers, on the embedded model.

python bench/monitor_quality.py --traits evil sycophantic hallucinating [--vectors_dir runs/vectors/smollm2-135m]

Per trait, with the vector at its default layer and the thresholds calibrated on its extraction data:
- AUC of the last-prompt-token projection (early warning), pos- vs neg-system-prompted evaluation
  questions (the 20 held-out questions x the trait's 5 instruction pairs, cycled);
- the share of answers (greedy, --tokens new tokens) that the cap guard changes, for the evaluation
  questions asked without a system prompt and with a pos system prompt.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from persona_vaccine.models.chat import build_messages, format_chat
from persona_vaccine.models.loading import load_model
from persona_vaccine.monitoring import Watch, monitor
from persona_vaccine.monitoring.thresholds import thresholds_for
from persona_vaccine.paths import DEMO_VECTOR_DIR
from persona_vaccine.steering.score import auc
from persona_vaccine.steering.vector import PersonaVector
from persona_vaccine.traits import load_trait_spec


def _generate(model, tokenizer, ids: list[int], n: int) -> list[int]:
    out = model.generate(
        input_ids=torch.tensor([ids]),
        attention_mask=torch.ones(1, len(ids), dtype=torch.long),
        max_new_tokens=n,
        do_sample=False,
        pad_token_id=tokenizer.pad_token_id,
    )
    return out[0, len(ids) :].tolist()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--model", default="smollm2-135m")
    p.add_argument("--traits", nargs="+", default=["evil", "sycophantic", "hallucinating"])
    p.add_argument("--vectors_dir", default=DEMO_VECTOR_DIR)
    p.add_argument("--tokens", type=int, default=32)
    p.add_argument("--cap_questions", type=int, default=20)
    opts = p.parse_args()
    model, tokenizer = load_model(opts.model)
    model.eval()
    rows = []
    for trait in opts.traits:
        path = Path(opts.vectors_dir) / trait / "response_avg.safetensors"
        if not path.is_file():
            print(f"{trait}: no vector at {path} (not measured)")
            continue
        vector = PersonaVector.load(path)
        spec = load_trait_spec(trait)
        layer = vector.default_layer()
        th = thresholds_for(model, tokenizer, vector, layer, path)
        questions = list(spec.evaluation_questions)
        pairs = len(spec.instruction_pairs)

        def ids(q: str, system: str | None) -> list[int]:
            text = format_chat(tokenizer, build_messages(q, system))
            return tokenizer(text, add_special_tokens=False)["input_ids"]

        early = {"pos": [], "neg": []}
        with torch.inference_mode(), monitor(model, [Watch(vector, layer)]) as m:
            for i, q in enumerate(questions):
                for polarity in early:
                    system = (
                        spec.pos_system_prompt(i % pairs)
                        if polarity == "pos"
                        else spec.neg_system_prompt(i % pairs)
                    )
                    model(torch.tensor([ids(q, system)]))
                    early[polarity].append(m.readings()[trait].prompt_last)
        changed = {"unprompted": 0, "pos-prompted": 0}
        capped_tokens = {"unprompted": 0, "pos-prompted": 0}
        subset = questions[: opts.cap_questions]
        cap = Watch(vector, layer, th.prompt, th.response, "cap")
        with torch.inference_mode():
            for i, q in enumerate(subset):
                for name, system in (
                    ("unprompted", None),
                    ("pos-prompted", spec.pos_system_prompt(i % pairs)),
                ):
                    prompt = ids(q, system)
                    plain = _generate(model, tokenizer, prompt, opts.tokens)
                    with monitor(model, [cap]) as m:
                        guarded = _generate(model, tokenizer, prompt, opts.tokens)
                    changed[name] += plain != guarded
                    capped_tokens[name] += m.readings()[trait].capped
        rows.append(
            (
                trait,
                layer,
                auc(early["pos"], early["neg"]),
                th,
                changed,
                capped_tokens,
                len(subset),
                len(questions),
            )
        )
    print(f"model {opts.model}, greedy answers of {opts.tokens} tokens; cap = calibrated response threshold")
    print(
        "| trait | layer | early-warning AUC (pos vs neg prompted, n) | thresholds: prompt / response (extraction AUCs) "
        "| cap changes answer: unprompted | cap changes answer: pos-prompted | tokens capped: unprompted / pos |"
    )
    print("|---|---|---|---|---|---|---|")
    for trait, layer, a, th, changed, capped, n, nq in rows:
        print(
            f"| {trait} | {layer} | {a:.3f} ({nq}+{nq}) | {th.prompt:+.2f} / {th.response:+.2f} "
            f"({th.prompt_auc:.3f} / {th.response_auc:.3f}) | {changed['unprompted']}/{n} | {changed['pos-prompted']}/{n} "
            f"| {capped['unprompted']} / {capped['pos-prompted']} |"
        )


if __name__ == "__main__":
    main()
