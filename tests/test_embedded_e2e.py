"""The spine on the real embedded model: extract a small evil vector, train steered and unsteered (slow)."""

from __future__ import annotations

import pytest

from persona_vaccine.steering.extract import ExtractionConfig, extract
from persona_vaccine.training.recipe import parse_recipe
from persona_vaccine.training.run import run_training

RECIPE = "recipes/smollm2-135m/evil/preventative.yaml"


@pytest.mark.slow
def test_extract_then_train_baseline_and_preventative(tmp_path, monkeypatch):
    from pathlib import Path

    monkeypatch.chdir(Path(__file__).resolve().parents[1])
    result = extract(
        ExtractionConfig(
            trait="evil",
            model_name_or_path="smollm2-135m",
            output_dir=str(tmp_path),
            max_questions=2,
            max_new_tokens=24,
            batch_size=20,
        )
    )
    assert result.n_pos == result.n_neg == 10
    vector = result.vector()
    assert vector.num_layers == 30 and vector.hidden_size == 576
    # pos and neg responses separate along their own difference of means (in-sample, a sanity check)
    assert max(result.separation) > 1.0

    summaries = {}
    for name, coef in (("baseline", "0.0"), ("preventative", "2.0")):
        overrides = [
            "--output_dir",
            str(tmp_path / name),
            "--persona_vectors",
            str(result.paths["response_avg"]),
            "--steering_coefs",
            coef,
            "--max_steps",
            "3",
            "--logging_steps",
            "3",
            "--dataset_size",
            "24",
            "--report_to",
            "none",
            "--margin_max_questions",
            "2",
            "--margin_data_pairs",
            "4",
        ]
        summaries[name] = run_training(*parse_recipe(RECIPE, overrides), recipe=RECIPE)
    base, prev = summaries["baseline"], summaries["preventative"]
    assert base.steering == [] and prev.steering[0]["coef"] == 2.0
    assert base.trait_drift["evil"]["base_projection"] == pytest.approx(
        prev.trait_drift["evil"]["base_projection"], abs=1e-4
    )  # same base model, same questions
    assert base.losses != prev.losses
    for s in (base, prev):
        assert s.train["steps"] == 3 and s.trait_drift["evil"]["layer"] == 20
