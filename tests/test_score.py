"""Scoring: AUC and threshold math, projections, calibration from extraction data, the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from persona_vaccine.data.scoring import score_samples
from persona_vaccine.steering.extract import ExtractionConfig, extract
from persona_vaccine.steering.score import auc, best_threshold, calibrate
from persona_vaccine.steering.vector import PersonaVector

ROOT = Path(__file__).resolve().parents[1]


def response_projection(model, tokenizer, messages, response: str, vector, layer: int) -> float:
    """The reference: the response tokens' mean activation at `layer` (hidden_states[layer]) on the unit vector."""
    prompt_ids = tokenizer(
        tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True),
        add_special_tokens=False,
    )["input_ids"]
    resp_ids = tokenizer(response, add_special_tokens=False)["input_ids"]
    with torch.no_grad():
        hs = model(input_ids=torch.tensor([prompt_ids + resp_ids]), output_hidden_states=True).hidden_states
    return float(hs[layer][0, len(prompt_ids) :].mean(0) @ vector.unit(layer))


def test_auc_and_threshold():
    assert auc([3, 4, 5], [0, 1, 2]) == 1.0
    assert auc([0, 1], [2, 3]) == 0.0
    assert auc([1, 2], [1, 2]) == 0.5
    assert best_threshold([2.0, 3.0, 4.0], [0.0, 1.0, 1.5]) == 1.75  # midway between the closest pos and neg
    t = best_threshold([2.0, 3.0, 4.0, 5.0], [0.0, 1.0, 3.5])  # overlapping: the best cut misses one
    assert t == 1.5  # all pos above, 2 of 3 neg below (3.75 would keep only 2 of 4 pos)
    with pytest.raises(ValueError):
        auc([], [1.0])


def test_scores_are_projections_and_flags_follow_thresholds(tiny_chat_model, tiny_tokenizer, tmp_path):
    result = extract(
        ExtractionConfig(
            model_name_or_path="tiny", output_dir=str(tmp_path), max_questions=2, max_new_tokens=6
        ),
        model=tiny_chat_model,
        tokenizer=tiny_tokenizer,
    )
    vector = result.vector()
    cal = calibrate(tiny_chat_model, tiny_tokenizer, vector, 3, tmp_path / "evil" / "generations.jsonl")
    assert cal.n_pos == cal.n_neg == 10 and 0.0 <= cal.response_auc <= 1.0
    assert json.loads((tmp_path / "evil" / "thresholds.json").read_text())["response_avg:3"]["layer"] == 3
    samples = [
        {"prompt": [{"role": "user", "content": "Hello there"}]},
        {
            "prompt": [{"role": "user", "content": "Hi"}],
            "completion": [{"role": "assistant", "content": "Go away."}],
        },
    ]
    rows = score_samples(tiny_chat_model, tiny_tokenizer, vector, 3, samples, cal)
    assert rows[0]["response_projection"] is None and rows[0]["flagged"] == rows[0]["prompt_flag"]
    assert rows[1]["response_flag"] == (rows[1]["response_projection"] > cal.response_threshold)
    # the response projection is the response tokens' mean activation at layer 3 on the unit vector
    expected = response_projection(
        tiny_chat_model, tiny_tokenizer, samples[1]["prompt"], "Go away.", vector, 3
    )
    assert rows[1]["response_projection"] == pytest.approx(expected, abs=1e-4)


def test_score_command(tiny_chat_model, tiny_tokenizer, tmp_path, capsys, monkeypatch):
    """`launch.py score`, in this process through launch.main."""
    import persona_vaccine.cli as launch

    model_dir = tmp_path / "model"
    tiny_chat_model.save_pretrained(model_dir)
    tiny_tokenizer.save_pretrained(model_dir)
    extract(
        ExtractionConfig(
            model_name_or_path=str(model_dir),
            output_dir=str(tmp_path),
            max_questions=1,
            max_new_tokens=4,
            min_kept=2,  # the sampling seeds follow the temporary path: a short answer may come out empty
        ),
        model=tiny_chat_model,
        tokenizer=tiny_tokenizer,
    )
    data = tmp_path / "d.jsonl"
    data.write_text(json.dumps({"prompt": "How do I bake bread?", "response": "Knead it well."}) + "\n")
    cmd = [
        "score",
        "--vector",
        str(tmp_path / "evil/response_avg.safetensors"),
        "--layer",
        "2",
        "--text",
        "Hello",
        "--file",
        str(data),
        "--output",
        str(tmp_path / "rows.jsonl"),
    ]
    monkeypatch.chdir(tmp_path)
    code = launch.main(cmd)
    printed = capsys.readouterr()
    assert code == 0, printed.err[-2000:]
    rows = [json.loads(line) for line in (tmp_path / "rows.jsonl").read_text().splitlines()]
    assert len(rows) == 2
    # the file's row, recomputed: the response tokens' mean layer-2 activation on the unit vector
    vector = PersonaVector.load(tmp_path / "evil/response_avg.safetensors")
    messages = [{"role": "user", "content": "How do I bake bread?"}]
    expected = response_projection(tiny_chat_model, tiny_tokenizer, messages, "Knead it well.", vector, 2)
    assert rows[1]["response_projection"] == pytest.approx(expected, abs=1e-4)
    # its flag follows the threshold calibrated at layer 2 on the extraction responses
    threshold = json.loads((tmp_path / "evil" / "thresholds.json").read_text())["response_avg:2"][
        "response_threshold"
    ]
    assert rows[1]["flagged"] is rows[1]["response_flag"] is (expected > threshold)
    assert f"{sum(r['flagged'] for r in rows)} of 2 samples flagged" in printed.out
