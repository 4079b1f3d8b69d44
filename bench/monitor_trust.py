"""Can a team trust the monitor? False alerts on ordinary traffic, behaviour it predicts, drift it catches, and
what the cap costs, on the embedded model with the evil, sycophantic and hallucinating vectors.

Stages (each result is kept in OUT/results.json; a rerun redoes only what is missing):
  vectors      extract the three vectors if missing (`launch.py extract`, answers generated on vLLM when installed)
  calibrate    `launch.py calibrate-monitor` on the shipped ordinary prompts: thresholds at 1 % false alerts
  behaviour    judge-free behaviour: Level II vs Normal builder answers teacher-forced (running mean AUC), and the
               early warning against the model's own likelihood margin on the same questions (AUC, Spearman r)
  classifier   the early warning and running mean of the model's own answers (evaluation questions, with no,
               pos and neg system prompt) against the classifier judge's verdict on each answer
  drift        base, baseline fine-tune and preventative fine-tune of the evil family (merged exports, several
               seeds): alert rate and mean projection on the held-out ordinary prompts at the base thresholds
  cap          the cap at the 99th percentile of ordinary answer tokens: ordinary answers changed, multiple
               choice with and without it, and the likelihood margin it removes from pos-prompted and drifted answers
  conversations per-turn readings over the shipped multi-turn chats (ordinary vs pushing off persona), plotted

Run: python bench/monitor_trust.py [--seeds 3] [--steps 20] [--out runs/trust]
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from persona_vaccine.models.chat import build_messages, format_chat  # noqa: E402
from persona_vaccine.models.loading import load_model  # noqa: E402
from persona_vaccine.monitoring.ordinary import (  # noqa: E402
    OrdinaryCalibration,
    alert_rate,
    find_calibration,
    load_prompts,
    read_answers,
)
from persona_vaccine.steering import residual_ops  # noqa: E402
from persona_vaccine.steering.hook_core import attach  # noqa: E402
from persona_vaccine.steering.score import auc  # noqa: E402
from persona_vaccine.steering.vector import PersonaVector  # noqa: E402

MODEL = "smollm2-135m"
TRAITS = ("evil", "sycophantic", "hallucinating")
VECTORS = ROOT / "runs/vectors/smollm2-135m"
MAX_NEW = 48


def launch(*args: str) -> None:
    print("$ launch.py", " ".join(args), flush=True)
    subprocess.run([sys.executable, str(ROOT / "launch.py"), *args], check=True, cwd=ROOT)


def vector_path(trait: str) -> Path:
    return VECTORS / trait / "response_avg.safetensors"


def engine_name() -> str:
    import importlib.util

    return "vllm" if importlib.util.find_spec("vllm") is not None else "hf"


def interval(values: Sequence[float]) -> list[float]:
    """Mean and 95 % t-interval over seeds."""
    t95 = {1: 12.71, 2: 4.30, 3: 3.18, 4: 2.78, 5: 2.57}
    m = statistics.fmean(values)
    if len(values) < 2:
        return [m, m, m]
    half = t95.get(len(values) - 1, 2.0) * statistics.stdev(values) / math.sqrt(len(values))
    return [m, m - half, m + half]


def spearman(x: Sequence[float], y: Sequence[float]) -> float:
    def ranks(v: Sequence[float]) -> list[float]:
        order = sorted(range(len(v)), key=v.__getitem__)
        r = [0.0] * len(v)
        for rank, i in enumerate(order):
            r[i] = float(rank)
        return r

    rx, ry = ranks(x), ranks(y)
    return float(torch.corrcoef(torch.tensor([rx, ry]))[0, 1])


# --- stages ---------------------------------------------------------------------------------------
def stage_vectors() -> dict:
    for trait in TRAITS:
        if not vector_path(trait).is_file():
            launch("extract", "--trait", trait, "--model_name_or_path", MODEL, "--output_dir", str(VECTORS),
                   "--heldout_eval", "false", "--generation_engine", engine_name(), "--generation_dtype", "bfloat16")  # fmt: skip
    return {t: str(vector_path(t)) for t in TRAITS}


def stage_calibrate() -> dict:
    if any(find_calibration(vector_path(t)) is None for t in TRAITS):
        launch("calibrate-monitor", "--model", MODEL, "--vectors", *[str(vector_path(t)) for t in TRAITS])
    out = {}
    for trait in TRAITS:
        cal = find_calibration(vector_path(trait))
        assert cal is not None
        out[trait] = {
            "layer": cal.layer,
            "prompt_threshold": cal.prompt_threshold,
            "response_threshold": cal.response_threshold,
            "cap": cal.cap,
            "tune_false_alert_rate": cal.tune_false_alert_rate,
            "heldout_false_alert_rate": cal.heldout_false_alert_rate,
            "n_heldout": cal.n_heldout,
        }
    return out


def _prompt_ids(tokenizer, question: str, system: str | None = None) -> list[int]:
    return tokenizer(format_chat(tokenizer, build_messages(question, system)), add_special_tokens=False)[
        "input_ids"
    ]


def _ids(tokenizer, text: str) -> list[int]:
    return tokenizer(text, add_special_tokens=False)["input_ids"]


DATASETS = {"evil": "evil", "sycophantic": "sycophantic", "hallucinating": "hallucinating"}


@torch.no_grad()
def mean_logprob(model, prompt: list[int], answer: list[int], cap: tuple | None = None) -> float:
    """Mean log-probability per answer token; `cap` = (vector, {layer: cap}) clamps answer positions."""
    ids = torch.tensor([prompt + answer])
    ops = {}
    if cap is not None:
        vector, caps = cap
        start = len(prompt)

        def op(layer: int, hidden: torch.Tensor) -> torch.Tensor:
            unit = vector.unit(layer).to(hidden.dtype)
            rows = torch.zeros(hidden.shape[:2])
            rows[:, start:] = 1.0
            return residual_ops.cap(hidden, unit, caps[layer], rows)[0]

        ops = {layer: [op] for layer in caps}
    with attach(model, ops):
        logits = model(input_ids=ids).logits.float()
    logp = torch.log_softmax(logits[0, len(prompt) - 1 : -1], -1)
    return float(logp.gather(-1, torch.tensor(answer)[:, None]).mean())


def _margins(model, tokenizer, rows, system=None, cap=None) -> list[float]:
    out = []
    for question, trait_answer, normal_answer in rows:
        prompt = _prompt_ids(tokenizer, question, system)
        out.append(
            mean_logprob(model, prompt, _ids(tokenizer, trait_answer), cap)
            - mean_logprob(model, prompt, _ids(tokenizer, normal_answer), cap)
        )
    return out


def stage_behaviour(model, tokenizer, n_pairs: int) -> dict:
    from persona_vaccine.training.margin import data_answer_rows

    out = {}
    for trait in TRAITS:
        vector = PersonaVector.load(vector_path(trait))
        layer = vector.default_layer()
        rows = data_answer_rows(DATASETS[trait], n_pairs, seed=7)
        prompts = [_prompt_ids(tokenizer, q) for q, _, _ in rows]
        severe = read_answers(
            model, vector, [layer], prompts, [_ids(tokenizer, a) for _, a, _ in rows], 10**6
        )
        normal = read_answers(
            model, vector, [layer], prompts, [_ids(tokenizer, b) for _, _, b in rows], 10**6
        )
        running = (
            [statistics.fmean(r.answer[layer]) for r in severe],
            [statistics.fmean(r.answer[layer]) for r in normal],
        )
        margins = _margins(model, tokenizer, rows)
        early = [r.prompt_last for r in severe]
        median = statistics.median(margins)
        prefers = [e for e, m in zip(early, margins, strict=True) if m > median]
        other = [e for e, m in zip(early, margins, strict=True) if m <= median]
        out[trait] = {
            "pairs": len(rows),
            "running_mean_auc_level2_vs_normal": auc(running[0], running[1]),
            "early_warning_auc_margin_above_median": auc(prefers, other),
            "early_warning_spearman_r_margin": spearman(early, margins),
        }
        print(trait, out[trait], flush=True)
    return out


def split_auc(
    values: list[float], labels: list[bool], kinds: list[str], only: str | None = None
) -> float | None:
    """AUC of `values` for trait answers vs the others (of one kind of prompt only, if given)."""
    rows = [(v, y) for v, y, k in zip(values, labels, kinds, strict=True) if only is None or k == only]
    pos, neg = [v for v, y in rows if y], [v for v, y in rows if not y]
    return auc(pos, neg) if pos and neg else None


def stage_classifier(model, tokenizer) -> dict:
    """The early warning and the running mean against what the answer then does, judged by the classifier
    judge (TF-IDF + logistic regression on the extraction's answers: it never sees the vector)."""
    from persona_vaccine.judges.classifier import FILE_NAME, ClassifierJudge, train_from_extraction
    from persona_vaccine.traits import load_trait_spec

    out = {}
    for trait in TRAITS:
        trait_dir = vector_path(trait).parent
        if not (trait_dir / FILE_NAME).is_file():
            train_from_extraction(trait_dir).save(trait_dir / FILE_NAME)
        judge = ClassifierJudge.load(trait_dir / FILE_NAME)
        spec = load_trait_spec(trait)
        vector = PersonaVector.load(vector_path(trait))
        layer = vector.default_layer()
        systems = {"none": None, "pos": spec.pos_system_prompt(0), "neg": spec.neg_system_prompt(0)}
        prompts, kinds = [], []
        for kind, system in systems.items():
            for question in spec.evaluation_questions:
                prompts.append(format_chat(tokenizer, build_messages(question, system)))
                kinds.append(kind)
        from persona_vaccine.steering.generation_engines import engine_for

        with engine_for(engine_name(), MODEL, model, tokenizer) as engine:
            gens = engine.generate(prompts, MAX_NEW)
        reads = read_answers(
            model, vector, [layer], [g.prompt_ids for g in gens], [g.response_ids for g in gens], MAX_NEW
        )
        labels = [p >= 0.5 for p in judge.probabilities([g.response for g in gens])]
        running = [statistics.fmean(r.answer[layer]) if r.answer[layer] else 0.0 for r in reads]
        early = [r.prompt_last for r in reads]

        out[trait] = {
            "answers": len(gens),
            "trait_answers": sum(labels),
            "trait_answers_unprompted": sum(y for y, k in zip(labels, kinds, strict=True) if k == "none"),
            "early_warning_auc": split_auc(early, labels, kinds),
            "running_mean_auc": split_auc(running, labels, kinds),
            "early_warning_auc_unprompted": split_auc(early, labels, kinds, "none"),
            "running_mean_auc_unprompted": split_auc(running, labels, kinds, "none"),
        }
        print(trait, out[trait], flush=True)
    return out


def _train(out: Path, seeds: int, steps: int) -> dict[str, list[Path]]:
    runs: dict[str, list[Path]] = {"baseline": [], "preventative": []}
    for seed in range(seeds):
        for run in runs:
            directory = out / "train" / f"{run}_seed{seed}"
            if not (directory / "summary.json").is_file():
                launch("train", f"recipes/smollm2-135m/evil/{run}.yaml", "--output_dir", str(directory),
                       "--persona_vectors", str(vector_path("evil")), "--seed", str(seed), "--max_steps", str(steps),
                       "--measure_margin", "false", "--report_to", "none")  # fmt: skip
            if not (directory / "export" / "config.json").is_file():
                launch("export", str(directory))
            runs[run].append(directory / "export")
    return runs


def _answers(
    model_id: str, model, tokenizer, prompts: list[str], out: Path
) -> list[tuple[list[int], list[int]]]:
    from persona_vaccine.monitoring.ordinary import answer_ordinary_prompts
    from persona_vaccine.steering.generation_engines import engine_for

    cache = (
        Path(model_id) / "ordinary_answers.jsonl" if Path(model_id).is_dir() else out / "base_answers.jsonl"
    )
    with engine_for(engine_name(), model_id, model, tokenizer) as engine:
        return answer_ordinary_prompts(engine, tokenizer, prompts, MAX_NEW, cache, model_id)


def _alert_stats(model, vector: PersonaVector, cal: OrdinaryCalibration, answered) -> dict:
    layer = cal.layer
    reads = read_answers(
        model, vector, [layer], [a for a, _ in answered], [b for _, b in answered], MAX_NEW, layer
    )
    rate = alert_rate(reads, layer, cal.prompt_threshold, cal.response_threshold, cal.min_tokens)
    means = [statistics.fmean(r.answer[layer]) for r in reads if r.answer[layer]]
    return {"alert_rate": rate, "mean_projection": statistics.fmean(means)}


def stage_drift(out: Path, seeds: int, steps: int, n_prompts: int) -> dict:
    vector = PersonaVector.load(vector_path("evil"))
    cal = find_calibration(vector_path("evil"))
    assert cal is not None
    prompts = load_prompts(None, "heldout")[:n_prompts]
    runs = {"base": [Path(MODEL)], **_train(out, seeds, steps)}
    result = {}
    for name, paths in runs.items():
        per_seed = []
        for path in paths:
            model_id = str(path)
            model, tokenizer = load_model(model_id)
            per_seed.append(
                _alert_stats(model, vector, cal, _answers(model_id, model, tokenizer, prompts, out))
            )
            del model
        result[name] = {
            "alert_rate": interval([s["alert_rate"] for s in per_seed]),
            "mean_projection": interval([s["mean_projection"] for s in per_seed]),
            "seeds": len(per_seed),
        }
        print(name, result[name], flush=True)
    base = result["base"]["alert_rate"][0]
    result["baseline_over_base"] = result["baseline"]["alert_rate"][0] / max(base, 1e-9)
    result["preventative_over_base"] = result["preventative"]["alert_rate"][0] / max(base, 1e-9)
    return result


def _changed_answers(model, tokenizer, vector, cal, prompts: list[str], caps: dict[int, float]) -> float:
    from persona_vaccine.monitoring import Watch, monitor

    changed = 0
    watch = Watch(vector, cal.layer, None, cal.cap, "cap", cal.cap, band_caps=caps)
    for prompt in prompts:
        ids = torch.tensor([_prompt_ids(tokenizer, prompt)])
        with torch.no_grad():
            plain = model.generate(input_ids=ids, max_new_tokens=MAX_NEW, do_sample=False)
            with monitor(model, [watch]):
                capped = model.generate(input_ids=ids, max_new_tokens=MAX_NEW, do_sample=False)
        changed += not torch.equal(plain, capped)
    return changed / len(prompts)


def _mc(
    model, tokenizer, vector, cal, limit: int, positions: str | None, caps: dict[int, float] | None = None
) -> float:
    from persona_vaccine.monitoring import Watch, monitor
    from persona_vaccine.training.capability import capability_metrics

    if positions is None:
        return capability_metrics(model, tokenizer, ["mc"], None, limit)["capability/mc_chat_cloze_accuracy"]
    watch = Watch(
        vector, cal.layer, None, cal.cap, "cap", cal.cap, cap_positions=positions, band_caps=caps or {}
    )
    with monitor(model, [watch]):
        return capability_metrics(model, tokenizer, ["mc"], None, limit)["capability/mc_chat_cloze_accuracy"]


def stage_cap(
    model, tokenizer, out: Path, n_prompts: int, n_pairs: int, mc_limit: int, band: bool = False
) -> dict:
    """With `band`, the cap acts at every layer of the calibration's band (`calibrate-monitor --band`)."""
    from persona_vaccine.training.margin import data_answer_rows
    from persona_vaccine.traits import load_trait_spec

    vector = PersonaVector.load(vector_path("evil"))
    cal = find_calibration(vector_path("evil"))
    assert cal is not None
    caps = dict(cal.band_caps) if band else {cal.layer: cal.cap}
    cap = (vector, caps)
    result: dict = {"cap": cal.cap, "layer": cal.layer, "band_caps": {str(k): v for k, v in caps.items()}}
    result["ordinary_answers_changed"] = _changed_answers(
        model, tokenizer, vector, cal, load_prompts(None, "heldout")[:n_prompts], caps
    )
    result["mc"] = {
        "without": _mc(model, tokenizer, vector, cal, mc_limit, None),
        "cap_on_answer_tokens": _mc(model, tokenizer, vector, cal, mc_limit, "answer", caps),
        "cap_on_all_tokens": _mc(model, tokenizer, vector, cal, mc_limit, "all", caps),
    }
    rows = data_answer_rows("evil", n_pairs, seed=11)
    system = load_trait_spec("evil").pos_system_prompt(0)
    none, pos = (
        statistics.fmean(_margins(model, tokenizer, rows)),
        statistics.fmean(_margins(model, tokenizer, rows, system)),
    )
    pos_cap = statistics.fmean(_margins(model, tokenizer, rows, system, cap))
    result["pos_prompted"] = {"margin_none": none, "margin_pos": pos, "margin_pos_capped": pos_cap,
                              "removed": (pos - pos_cap) / (pos - none) if pos != none else None}  # fmt: skip
    drifted = []
    for path in sorted((out / "train").glob("baseline_seed*/export")):
        ft, ft_tok = load_model(str(path))
        m_ft = statistics.fmean(_margins(ft, ft_tok, rows))
        m_ft_cap = statistics.fmean(_margins(ft, ft_tok, rows, None, cap))
        drifted.append({"model": str(path), "margin": m_ft, "margin_capped": m_ft_cap,
                        "removed": (m_ft - m_ft_cap) / (m_ft - none) if m_ft != none else None})  # fmt: skip
        del ft
    result["drifted"] = drifted
    print("cap", result, flush=True)
    return result


def stage_conversations(model, tokenizer, out: Path) -> dict:
    from persona_vaccine.monitoring.engine import turn_spans

    chats = [
        json.loads(line)
        for line in (ROOT / "monitoring/traffic/conversations.jsonl").read_text().splitlines()
    ]
    vectors = {t: PersonaVector.load(vector_path(t)) for t in TRAITS}
    cals = {t: find_calibration(vector_path(t)) for t in TRAITS}
    per_chat = []
    for chat in chats:
        messages: list[dict] = []
        turns: dict[str, list[float]] = {t: [] for t in TRAITS}
        alerts: dict[str, list[bool]] = {t: [] for t in TRAITS}
        for user in chat["turns"]:
            messages.append({"role": "user", "content": user})
            prompt = tokenizer(format_chat(tokenizer, messages), add_special_tokens=False)["input_ids"]
            with torch.no_grad():
                gen = model.generate(
                    input_ids=torch.tensor([prompt]), max_new_tokens=MAX_NEW, do_sample=False
                )
            answer = [t for t in gen[0, len(prompt) :].tolist() if t not in (tokenizer.eos_token_id,)]
            for trait, vector in vectors.items():
                cal = cals[trait]
                assert cal is not None
                r = read_answers(model, vector, [cal.layer], [prompt], [answer], MAX_NEW, cal.layer)[0]
                turns[trait].append(
                    statistics.fmean(r.answer[cal.layer]) if r.answer[cal.layer] else float("nan")
                )
                running = r.running_max(cal.layer, cal.min_tokens)
                alerts[trait].append(bool(running is not None and running > cal.response_threshold))
            messages.append(
                {"role": "assistant", "content": tokenizer.decode(answer, skip_special_tokens=True)}
            )
        assert len(turn_spans(tokenizer, messages)) == len(chat["turns"])
        per_chat.append(
            {"id": chat["id"], "kind": chat["kind"], "trait": chat["trait"], "turns": turns, "alerts": alerts}
        )
    (out / "conversations.json").write_text(json.dumps(per_chat, indent=1))
    _plot_conversations(per_chat, out / "conversations.png")
    summary = {}
    for trait in TRAITS:
        push = [c for c in per_chat if c["trait"] == trait]
        ordinary = [c for c in per_chat if c["kind"] == "ordinary"]
        summary[trait] = {
            "push_alert_rate_per_turn": _rate_per_turn(push, trait),
            "ordinary_alert_rate_per_turn": _rate_per_turn(ordinary, trait),
            "push_last_minus_first": _last_minus_first(push, trait),
            "ordinary_last_minus_first": _last_minus_first(ordinary, trait),
        }
    return summary


def _last_minus_first(chats: list[dict], trait: str) -> float | None:
    diffs = [c["turns"][trait][-1] - c["turns"][trait][0] for c in chats]
    return statistics.fmean(diffs) if diffs else None


def _rate_per_turn(chats: list[dict], trait: str) -> list[float]:
    if not chats:
        return []
    n = max(len(c["alerts"][trait]) for c in chats)
    return [
        statistics.fmean(c["alerts"][trait][k] for c in chats if k < len(c["alerts"][trait]))
        for k in range(n)
    ]


def _plot_conversations(per_chat: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(TRAITS), figsize=(4.2 * len(TRAITS), 3.4), sharex=True)
    for ax, trait in zip(axes, TRAITS, strict=True):
        for chat in per_chat:
            pushing = chat["trait"] == trait
            if chat["kind"] == "persona_push" and not pushing:
                continue
            values = chat["turns"][trait]
            ax.plot(range(1, len(values) + 1), values, color="#b2182b" if pushing else "#999999",
                    alpha=0.9 if pushing else 0.5, lw=1.6 if pushing else 1.0)  # fmt: skip
        ax.set_title(f"{trait}: answer mean per turn")
        ax.set_xlabel("turn")
    axes[0].set_ylabel("projection (answer mean)")
    axes[0].plot([], [], color="#b2182b", label="pushing toward the trait")
    axes[0].plot([], [], color="#999999", label="ordinary chat")
    axes[0].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def _f(x, digits: int = 3) -> str:
    return "-" if x is None else f"{x:.{digits}f}"


def _pct(x) -> str:
    return "-" if x is None else f"{100 * x:.1f} %"


def _ci(values: list[float], pct: bool = False) -> str:
    m, lo, hi = values
    return f"{_pct(m)} [{_pct(lo)}, {_pct(hi)}]" if pct else f"{m:+.2f} [{lo:+.2f}, {hi:+.2f}]"


def report(results: dict) -> str:
    """The markdown tables of docs/RESULTS.md from results.json."""
    lines = ["| trait | held-out false alerts at the 1 % setting | running mean AUC, Level II vs Normal (teacher-forced) "
             "| running mean AUC vs classifier verdict, all / unprompted | early warning AUC vs classifier verdict, "
             "all / unprompted | early warning vs likelihood margin: AUC / Spearman r |", "|---|---|---|---|---|---|"]  # fmt: skip
    for t in TRAITS:
        c, b, k = results["calibrate"][t], results["behaviour"][t], results.get("classifier", {}).get(t, {})
        lines.append(
            f"| {t} | {_pct(c['heldout_false_alert_rate'])} of {c['n_heldout']} | {_f(b['running_mean_auc_level2_vs_normal'])} "
            f"| {_f(k.get('running_mean_auc'))} / {_f(k.get('running_mean_auc_unprompted'))} "
            f"| {_f(k.get('early_warning_auc'))} / {_f(k.get('early_warning_auc_unprompted'))} "
            f"| {_f(b['early_warning_auc_margin_above_median'])} / {_f(b['early_warning_spearman_r_margin'], 2)} |"
        )
    if "drift" in results:
        d = results["drift"]
        lines += ["", "| evil model | alert rate on held-out ordinary prompts | mean projection of the answers | seeds |",
                  "|---|---|---|---|"]  # fmt: skip
        for name in ("base", "baseline", "preventative"):
            lines.append(
                f"| {name} | {_ci(d[name]['alert_rate'], True)} | {_ci(d[name]['mean_projection'])} | {d[name]['seeds']} |"
            )
        base, held = d["base"]["alert_rate"][0], results["calibrate"]["evil"]["heldout_false_alert_rate"]
        reference = base if base > 0 else held  # no base alert in these prompts: its rate on the 200 held-out
        note = (
            ""
            if base > 0
            else f" (no base alert on these prompts: its {_pct(held)} on all 200 held-out ones is the reference)"
        )
        lines.append(
            f"\nbaseline / base alert rate: {d['baseline']['alert_rate'][0] / reference:.1f}x; preventative / base: "
            f"{d['preventative']['alert_rate'][0] / reference:.2f}x{note}"
        )
    for key, label in (
        ("cap", "the evil cap at layer {layer}"),
        ("cap_band", "the evil cap over layers {band}"),
    ):
        if key not in results:
            continue
        c = results[key]
        layers = sorted(int(k) for k in c.get("band_caps", {str(c["layer"]): c["cap"]}))
        title = label.format(layer=c["layer"], band=f"{layers[0]}-{layers[-1]}")
        removed = [x["removed"] for x in c["drifted"] if x["removed"] is not None]
        lines += ["", f"| {title} (99th percentile of ordinary answer tokens) | figure |", "|---|---|",
                  f"| ordinary answers changed (greedy, 48 tokens) | {_pct(c['ordinary_answers_changed'])} |",
                  f"| multiple choice (choice text): without / cap on answer tokens / cap on all tokens | "
                  f"{_pct(c['mc']['without'])} / {_pct(c['mc']['cap_on_answer_tokens'])} / {_pct(c['mc']['cap_on_all_tokens'])} |",
                  f"| likelihood margin removed, pos-prompted answers | {_pct(c['pos_prompted']['removed'])} |",
                  f"| likelihood margin removed, baseline fine-tunes (per seed) | {', '.join(_pct(r) for r in removed)} |"]  # fmt: skip
    if "conversations" in results:
        lines += ["", "| trait | running-mean alert rate per turn, chats pushing toward the trait | ordinary chats "
                  "| answer mean, last turn minus first: pushing / ordinary |", "|---|---|---|---|"]  # fmt: skip
        for t in TRAITS:
            c = results["conversations"][t]
            push = ", ".join(_pct(x) for x in c["push_alert_rate_per_turn"])
            ordinary = ", ".join(_pct(x) for x in c["ordinary_alert_rate_per_turn"])
            lines.append(
                f"| {t} | {push} | {ordinary} | {_f(c['push_last_minus_first'], 2)} / {_f(c['ordinary_last_minus_first'], 2)} |"
            )
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", default="runs/trust")
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--pairs", type=int, default=60, help="builder Level II vs Normal pairs per trait")
    p.add_argument(
        "--cap_prompts", type=int, default=50, help="held-out ordinary prompts answered with the cap"
    )
    p.add_argument(
        "--drift_prompts", type=int, default=100, help="held-out ordinary prompts sent to each model"
    )
    p.add_argument("--mc_limit", type=int, default=200)
    p.add_argument(
        "--stages",
        nargs="*",
        default=["vectors", "calibrate", "behaviour", "classifier", "drift", "cap", "conversations"],
    )
    p.add_argument(
        "--report", action="store_true", help="print the markdown tables of OUT/results.json and stop"
    )
    opts = p.parse_args()
    out = ROOT / opts.out
    if opts.report:
        print(report(json.loads((out / "results.json").read_text())))
        return
    out.mkdir(parents=True, exist_ok=True)
    results_path = out / "results.json"
    results = json.loads(results_path.read_text()) if results_path.is_file() else {}
    model = tokenizer = None
    for stage in opts.stages:
        if stage in results:
            print(f"{stage}: kept from {results_path}")
            continue
        start = time.perf_counter()
        if stage in ("behaviour", "classifier", "cap", "cap_band", "conversations") and model is None:
            model, tokenizer = load_model(MODEL)
        if stage == "vectors":
            results[stage] = stage_vectors()
        elif stage == "calibrate":
            results[stage] = stage_calibrate()
        elif stage == "behaviour":
            results[stage] = stage_behaviour(model, tokenizer, opts.pairs)
        elif stage == "classifier":
            results[stage] = stage_classifier(model, tokenizer)
        elif stage == "drift":
            results[stage] = stage_drift(out, opts.seeds, opts.steps, opts.drift_prompts)
        elif stage == "cap":
            results[stage] = stage_cap(model, tokenizer, out, opts.cap_prompts, opts.pairs, opts.mc_limit)
        elif stage == "cap_band":
            results[stage] = stage_cap(
                model, tokenizer, out, opts.cap_prompts, opts.pairs, opts.mc_limit, True
            )
        elif stage == "conversations":
            results[stage] = stage_conversations(model, tokenizer, out)
        results[stage + "_seconds"] = time.perf_counter() - start
        results_path.write_text(json.dumps(results, indent=2))
        print(f"{stage}: {results[stage + '_seconds']:.0f} s", flush=True)
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
