"""Seeds and uncertainty (training/seeds.py): intervals, resumable seed runs, compare of seed groups."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from persona_vaccine.training.seeds import (
    aggregate,
    compare_seed_groups,
    difference,
    fraction_removed,
    from_interval,
    interval,
    run_metrics,
    run_seeds,
    seed_runs,
    verdict,
)

T_975_DF2 = 4.302652729911275  # Student's t, 97.5% quantile, 2 degrees of freedom (a table value)


def _summary(shift: float, margin: float, mc: float, runtime: float, trait: float | None = 20.0) -> dict:
    return {
        "trait_drift": {"evil": {"layer": 20, "shift": shift}},
        "behaviour": {"evil": {"pairs": 10, "final_margin": margin, "margin_shift": margin - 0.1}},
        "trait_expression": {"evil": trait, "evil_coherence": 80.0},
        "capability": {"capability/mc_chat_cloze_accuracy": mc},
        "train": {"runtime_s": runtime},
    }


def _group(root: Path, rows: list[dict]) -> Path:
    for seed, summary in enumerate(rows):
        (root / f"seed_{seed}").mkdir(parents=True)
        (root / f"seed_{seed}" / "summary.json").write_text(json.dumps(summary))
    return root


def test_t_interval_matches_the_textbook_formula():
    stats = interval([1.0, 2.0, 3.0])
    assert stats["mean"] == 2.0 and stats["sd"] == pytest.approx(1.0)
    half = T_975_DF2 / math.sqrt(3)
    assert (stats["low"], stats["high"]) == pytest.approx((2.0 - half, 2.0 + half))
    single = interval([5.0])
    assert single["mean"] == 5.0 and single["low"] is None  # no interval from one seed


def test_fraction_removed_is_the_fieller_interval_of_the_ratio():
    baseline, steered = interval([0.20, 0.21, 0.23]), interval([0.09, 0.10, 0.12])
    got = fraction_removed(baseline, steered)
    assert got["removed"] == pytest.approx(1 - steered["mean"] / baseline["mean"])
    # each end is a ratio q = 1 - end at which |m_s - q m_b| = t sqrt(se_s^2 + q^2 se_b^2) (Fieller)
    se_s2, se_b2 = steered["sd"] ** 2 / 3, baseline["sd"] ** 2 / 3
    for end in (got["low"], got["high"]):
        q = 1 - end
        lhs = abs(steered["mean"] - q * baseline["mean"])
        assert lhs == pytest.approx(T_975_DF2 * math.sqrt(se_s2 + q * q * se_b2), rel=1e-9)
    assert got["low"] < got["removed"] < got["high"]
    # an overshoot past zero is shift left: -0.05 leaves 0.05 of the baseline, it does not remove more
    over = fraction_removed(baseline, interval([-0.04, -0.05, -0.06]))
    assert over["removed"] == pytest.approx(1 - 0.05 / baseline["mean"]) and over["high"] <= 1.0
    # a baseline not clearly above zero bounds nothing; one run gives no interval
    assert fraction_removed(interval([-0.1, 0.0, 0.2]), steered)["low"] is None
    assert fraction_removed(interval([0.2]), steered)["low"] is None


def test_difference_verdict_and_a_printed_interval_read_back():
    a, b = interval([0.60, 0.59, 0.61]), interval([0.62, 0.60, 0.63])
    d = difference(a, b)
    half = T_975_DF2 * math.sqrt(a["sd"] ** 2 / 3 + b["sd"] ** 2 / 3)
    assert d["difference"] == pytest.approx(b["mean"] - a["mean"])
    assert (d["low"], d["high"]) == pytest.approx((d["difference"] - half, d["difference"] + half))
    assert [verdict(0.51, 0.6, 0.5), verdict(0.4, 0.49, 0.5), verdict(0.48, 0.55, 0.5)] == [
        "Met",
        "Missed",
        "Unresolved",
    ]
    assert verdict(None, None, 0.5) == "no interval"
    back = from_interval(b["mean"], b["low"], b["high"], 3)
    assert back["sd"] == pytest.approx(b["sd"], rel=1e-12)


def test_metrics_of_a_summary_and_their_aggregate(tmp_path):
    metrics = run_metrics(_summary(0.5, 0.2, 0.6, 10.0))
    assert metrics == {
        "shift/evil": 0.5,
        "margin/evil": 0.2,
        "margin_shift/evil": pytest.approx(0.1),
        "trait/evil": 20.0,
        "capability/mc_chat_cloze_accuracy": 0.6,
        "time_s": 10.0,
    }
    group = _group(tmp_path / "g", [_summary(s, 0.1 * s, 0.6, 10 + s) for s in (1.0, 2.0, 3.0)])
    stats = aggregate(seed_runs(group))
    assert stats["shift/evil"]["values"] == [1.0, 2.0, 3.0]
    assert stats["shift/evil"]["high"] == pytest.approx(2.0 + T_975_DF2 / math.sqrt(3))
    assert stats["capability/mc_chat_cloze_accuracy"]["sd"] == 0.0


def test_compare_shows_intervals_for_seed_groups(tmp_path, capsys):
    import persona_vaccine.cli as launch

    base = _group(tmp_path / "baseline", [_summary(s, 0.3, 0.6, 10.0) for s in (1.0, 1.2, 1.4)])
    prev = _group(tmp_path / "preventative", [_summary(s, 0.1, 0.6, 11.0) for s in (0.1, 0.2, 0.3)])
    table, rest = compare_seed_groups([str(base), str(prev)], tmp_path / "out")
    assert rest == [] and table is not None
    row = next(line for line in table.splitlines() if line.startswith("| shift/evil"))
    assert "1.2 [" in row and "0.2 [" in row  # means with their intervals, one column per group
    assert launch.main(["compare", str(base), str(prev), "--output_dir", str(tmp_path / "out2")]) == 0
    assert "| shift/evil" in capsys.readouterr().out
    assert (tmp_path / "out2" / "compare_seeds.md").is_file()


def test_finished_seeds_are_skipped(tmp_path):
    group = _group(tmp_path / "runs", [_summary(s, 0.3, 0.6, 10.0) for s in (1.0, 2.0)])
    recipe = tmp_path / "r.yaml"
    recipe.write_text(f"model_name_or_path: smollm2-135m\noutput_dir: {group}\nreport_to: none\n")
    stats, out = run_seeds(str(recipe), [0, 1])  # both finished: nothing is trained
    assert out == group and stats["shift/evil"]["n"] == 2
    saved = json.loads((group / "seeds.json").read_text())
    assert saved["metrics"]["shift/evil"]["values"] == [1.0, 2.0]
    assert "| shift/evil |" in (group / "seeds.md").read_text()


@pytest.mark.slow
def test_seed_runs_on_the_embedded_model(tmp_path, monkeypatch):
    from helpers import random_vector

    from persona_vaccine.models.loading import load_model

    monkeypatch.chdir(Path(__file__).resolve().parents[1])
    model, _ = load_model("smollm2-135m")
    vector = random_vector(model, model_id="smollm2-135m", scale=0.5)
    vector.extraction.update({"max_new_tokens": 8})
    path = vector.save(tmp_path / "evil" / "response_avg.safetensors")
    del model
    overrides = [
        "--output_dir", str(tmp_path / "group"), "--persona_vectors", str(path), "--max_steps", "2",
        "--logging_steps", "2", "--dataset_size", "16", "--report_to", "none", "--margin_max_questions", "2",
        "--margin_data_pairs", "4", "--drift_max_questions", "2",
    ]  # fmt: skip
    stats, group = run_seeds("recipes/smollm2-135m/evil/baseline.yaml", [0, 1], overrides)
    assert [p.name for p in seed_runs(group)] == ["seed_0", "seed_1"]
    assert stats["shift/evil"]["n"] == 2 and stats["shift/evil"]["low"] is not None
    assert stats["margin/evil"]["n"] == 2 and stats["time_s"]["n"] == 2
    losses = [json.loads((run / "summary.json").read_text())["losses"] for run in seed_runs(group)]
    assert losses[0] != losses[1]  # the seeds really differ
