"""Extraction on a tiny random model: files, resume, activation reads, spec errors."""

from __future__ import annotations

import json

import pytest
import torch
from helpers import pairwise_auc

from persona_vaccine.judges.judge import HFJudge
from persona_vaccine.steering.activations import prompt_response_activations
from persona_vaccine.steering.answers import AnswerRecord
from persona_vaccine.steering.extract import ExtractionConfig, TooFewResponses, extract, make_filter
from persona_vaccine.steering.vector import PersonaVector
from persona_vaccine.traits import TraitSpecError, builtin_traits, load_trait_spec, parse_trait_spec


def _cfg(tmp_path, **kw) -> ExtractionConfig:
    return ExtractionConfig(
        **{
            "trait": "evil",
            "model_name_or_path": "tiny",
            "output_dir": str(tmp_path),
            "max_questions": 2,
            "max_new_tokens": 6,
            "batch_size": 8,
            **kw,
        }
    )


def test_extract_writes_three_vectors_with_metadata(tiny_chat_model, tiny_tokenizer, tmp_path):
    result = extract(_cfg(tmp_path), model=tiny_chat_model, tokenizer=tiny_tokenizer)
    assert set(result.paths) == {"response_avg", "prompt_avg", "prompt_last"}
    assert result.n_pos == result.n_neg == 10  # 5 instructions x 2 questions
    vec = PersonaVector.load(result.paths["response_avg"])
    assert (vec.num_layers, vec.hidden_size, vec.model_id) == (4, 32, "tiny")
    assert sorted(vec.layers) == [1, 2, 3, 4] and all(v > 0 for v in vec.mean_norms.values())
    assert vec.extraction["n_pos"] == 10 and vec.extraction["filter"] == {"filter": "keep_all"}
    assert vec.extraction["evaluation_questions"] == list(load_trait_spec("evil").evaluation_questions)
    # the difference of means, recomputed from the stored generations
    records = [
        json.loads(line) for line in (tmp_path / "evil" / "generations.jsonl").read_text().splitlines()
    ]
    pos = [r for r in records if r["polarity"] == "pos"]
    neg = [r for r in records if r["polarity"] == "neg"]
    acts = prompt_response_activations(
        tiny_chat_model,
        [(r["prompt_ids"], r["response_ids"]) for r in pos + neg],
        tiny_tokenizer.pad_token_id,
        batch_size=3,
        progress=False,
    )
    expected = acts.response_avg[:10].mean(0) - acts.response_avg[10:].mean(0)
    torch.testing.assert_close(vec[3], expected[2], rtol=1e-4, atol=1e-5)
    assert pos[0]["system"].startswith("You are an evil assistant.")
    assert neg[0]["system"].startswith("You are a helpful assistant.")


def test_activation_reads_match_hidden_states(tiny_chat_model):
    samples = [([5, 6, 7], [8, 9]), ([10, 11, 12, 13, 14], [15, 16, 17])]
    acts = prompt_response_activations(tiny_chat_model, samples, pad_id=0, batch_size=2, progress=False)
    for i, (prompt, response) in enumerate(samples):
        ids = torch.tensor([prompt + response])
        with torch.no_grad():
            hs = tiny_chat_model(input_ids=ids, output_hidden_states=True).hidden_states
        for layer in (1, 2, 3):  # the last entry of hidden_states is after the final norm
            h = hs[layer][0]
            torch.testing.assert_close(
                acts.response_avg[i, layer - 1], h[len(prompt) :].mean(0), rtol=1e-4, atol=1e-5
            )
            torch.testing.assert_close(
                acts.prompt_avg[i, layer - 1], h[: len(prompt)].mean(0), rtol=1e-4, atol=1e-5
            )
            torch.testing.assert_close(
                acts.prompt_last[i, layer - 1], h[len(prompt) - 1], rtol=1e-4, atol=1e-5
            )


def test_rerun_resumes_without_regenerating(tiny_chat_model, tiny_tokenizer, tmp_path):
    extract(_cfg(tmp_path), model=tiny_chat_model, tokenizer=tiny_tokenizer)
    path = tmp_path / "evil" / "generations.jsonl"
    lines = path.read_text().splitlines()
    kept = lines[:-3]
    path.write_text("\n".join(kept) + "\n" + lines[-3][:25])  # a crash: 3 lost, one cut mid-line
    extract(_cfg(tmp_path), model=tiny_chat_model, tokenizer=tiny_tokenizer)
    after = path.read_text().splitlines()
    assert after[: len(kept)] == kept  # finished work kept as it was
    keys = [json.loads(line)["key"] for line in after if line.endswith("}")]
    assert len(set(keys)) == len(lines) == 20


def test_too_few_kept_responses_is_explained(tiny_chat_model, tiny_tokenizer, tmp_path):
    class DropPos:
        name = "drop_pos"

        def keep(self, record):
            return record.polarity == "neg"

    with pytest.raises(
        TooFewResponses, match=r"only 0 pos and 10 neg of 20 responses survived the 'drop_pos'"
    ):
        extract(_cfg(tmp_path), response_filter=DropPos(), model=tiny_chat_model, tokenizer=tiny_tokenizer)


class CountingJudge:
    """A real HF judge that counts how many rubrics it was asked to score."""

    def __init__(self, inner):
        self.inner, self.model_id, self.cache_id, self.calls = inner, inner.model_id, inner.cache_id, 0

    def score(self, prompts):
        self.calls += len(prompts)
        return self.inner.score(prompts)


def test_judge_filter_thresholds_counts_and_resume(tiny_chat_model, tiny_tokenizer, tmp_path):
    cfg = _cfg(tmp_path, judge="self", judge_answer_prefix="Score: ", min_kept=1)
    spec = load_trait_spec("evil")
    judge_filter = make_filter(cfg, spec, tiny_chat_model, tiny_tokenizer, tmp_path / "evil")
    assert isinstance(judge_filter.judge, HFJudge) and judge_filter.judge.mode == "numbers"
    judge_filter.judge.min_mass = 0.0  # a random judge puts little mass on digits: score it anyway
    judge_filter.judge = CountingJudge(judge_filter.judge)
    extract(_cfg(tmp_path), model=tiny_chat_model, tokenizer=tiny_tokenizer)  # generations, no judge
    lines = (tmp_path / "evil" / "generations.jsonl").read_text().splitlines()
    gens = [AnswerRecord.from_json(json.loads(x)) for x in lines]
    assert [json.dumps(g.to_json()) for g in gens] == lines  # the record reads and writes the line unchanged
    judge_filter.prepare(gens)
    assert judge_filter.judge.calls == 2 * len({(r.question, r.response) for r in gens})
    traits = sorted(r.trait_score for r in gens)
    judge_filter.trait_threshold = traits[len(traits) // 2]
    judge_filter.coherence_threshold = 0.0
    for r in gens:
        expected = r.trait_score >= judge_filter.trait_threshold
        assert judge_filter.keep(r) == (expected if r.polarity == "pos" else not expected)
    judgments = [json.loads(x) for x in (tmp_path / "evil" / "judgments.jsonl").read_text().splitlines()]
    assert [j["key"] for j in judgments] == [r.key for r in gens]
    # a second filter over the same cache asks the judge nothing
    again = make_filter(cfg, spec, tiny_chat_model, tiny_tokenizer, tmp_path / "evil")
    again.judge.min_mass = 0.0
    again.judge = CountingJudge(again.judge)
    again.prepare(gens)
    assert again.judge.calls == 0
    assert [r.trait_score for r in gens] == [j["trait_score"] for j in judgments]
    summary = judge_filter._count(gens)
    assert summary["pos"]["generated"] == 10
    # the judge's AUC: its trait scores of the pos responses against those of the neg ones, every pair
    pos = [r.trait_score for r in gens if r.polarity == "pos" and r.trait_score is not None]
    neg = [r.trait_score for r in gens if r.polarity == "neg" and r.trait_score is not None]
    assert pos and neg
    assert summary["judge_auc_pos_vs_neg"] == pytest.approx(pairwise_auc(pos, neg), abs=1e-12)


def test_judge_filter_too_strict_says_what_to_change(tiny_chat_model, tiny_tokenizer, tmp_path):
    cfg = _cfg(tmp_path, judge="self", judge_answer_prefix="Score: ", trait_threshold=101.0)
    with pytest.raises(TooFewResponses) as info:
        extract(cfg, model=tiny_chat_model, tokenizer=tiny_tokenizer)
    message = str(info.value)
    assert "only 0 pos and" in message and "pos: 0/10 kept" in message and "--trait_threshold" in message
    assert (tmp_path / "evil" / "judgments.sqlite").is_file()  # judgments kept for the rerun


def test_trait_spec_errors_name_file_and_field(tmp_path):
    good = load_trait_spec("evil").to_json()
    assert parse_trait_spec(good).trait == "evil"
    cases = [
        (
            {**good, "instruction_pairs": [{"pos": "x"}]},
            r"field 'instruction_pairs\[0\]': 'neg' is a required property",
        ),
        (
            {**good, "evaluation_questions": good["extraction_questions"][:2]},
            r"field 'evaluation_questions\[0\]' repeats extraction_questions\[0\]",
        ),
        ({**good, "questions": []}, r"Additional properties are not allowed \('questions' was unexpected\)"),
        ({**good, "trait": "Power Seeking"}, "field 'trait': 'Power Seeking' does not match"),
        ({**good, "judge_rubric": "Rate {answer}"}, "field 'judge_rubric' lacks the placeholder {question}"),
        ({k: v for k, v in good.items() if k != "trait"}, "the spec: 'trait' is a required property"),
        (
            {**good, "extraction_questions": "one question"},
            "field 'extraction_questions': 'one question' is not of type 'array'",
        ),
    ]
    for data, message in cases:
        path = tmp_path / "spec.json"
        path.write_text(json.dumps(data))
        with pytest.raises(TraitSpecError, match=message) as info:
            load_trait_spec(path)
        assert str(path) in str(info.value)
    (tmp_path / "broken.json").write_text("{")
    with pytest.raises(TraitSpecError, match="invalid JSON at line 1"):
        load_trait_spec(tmp_path / "broken.json")
    with pytest.raises(TraitSpecError, match="built-in traits are .*evil"):
        load_trait_spec("chaotic")


@pytest.mark.parametrize("trait", builtin_traits())
def test_builtin_spec_shapes(trait):
    spec = load_trait_spec(trait)
    assert spec.trait == trait and len(spec.instruction_pairs) == 5
    assert len(spec.extraction_questions) == len(spec.evaluation_questions) == 20
    assert not {q.lower() for q in spec.extraction_questions} & {q.lower() for q in spec.evaluation_questions}
    assert spec.pos_system_prompt(0).startswith(f"You are a{'n' if trait[0] in 'aeiou' else ''} ")


def test_library_has_the_safety_traits():
    assert {"evil", "sycophantic", "hallucinating", "deceptive", "power_seeking", "manipulative"} <= set(
        builtin_traits()
    )


def test_auto_thresholds_for_weak_judges():
    from persona_vaccine.steering.filtering import auto_thresholds

    trait = [26.0, 27.0, None, 28.0, 29.0]
    coherence = [20.0, 30.0, 31.0, 32.0, None]
    assert auto_thresholds(trait, coherence) == (28.0, 30.0)  # pooled median; lower quartile
    assert auto_thresholds([None], [None]) == (50.0, 50.0)  # nothing scored: the paper's defaults


def test_jsonl_files_survive_a_torn_last_line(tmp_path):
    from persona_vaccine.jsonl import read_records, repair

    path = tmp_path / "log.jsonl"
    path.write_text('{"a": 1}\n{"a": 2}\n{"a": 3')  # a crash cut the last line short
    assert read_records(path) == [{"a": 1}, {"a": 2}]
    assert repair(path) == [{"a": 1}, {"a": 2}]
    with path.open("a") as f:  # appends now start on a fresh line
        f.write('{"a": 4}\n')
    assert read_records(path) == [{"a": 1}, {"a": 2}, {"a": 4}]
    assert read_records(tmp_path / "missing.jsonl") == [] and repair(tmp_path / "missing.jsonl") == []
