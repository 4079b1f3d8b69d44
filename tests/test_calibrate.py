"""Layer x coefficient calibration: the choice rule, the grid on a tiny model, resume, metadata, report."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from helpers import random_vector

from persona_vaccine.judges.judge import HFJudge
from persona_vaccine.steering.answers import AnswerRecord
from persona_vaccine.steering.calibrate import (
    CalibrationConfig,
    Cell,
    apply_calibration,
    calibrate_vector,
    choose,
    default_layers,
    write_report,
)
from persona_vaccine.steering.extract import ExtractionConfig, extract, make_filter
from persona_vaccine.steering.vector import PersonaVector
from persona_vaccine.traits import load_trait_spec


def test_choose_best_coherent_layer_then_largest_coherent_coef():
    cells = [
        Cell(2, 1.0, trait=20, coherence=90, n_scored=5),
        Cell(2, 4.0, trait=35, coherence=70, n_scored=5),
        Cell(3, 1.0, trait=30, coherence=80, n_scored=5),
        Cell(3, 4.0, trait=90, coherence=10, n_scored=5),  # the trait soars but the answers are gibberish
        Cell(4, 2.0, trait=None, coherence=None, n_scored=0),
    ]
    assert choose(cells, coherence_threshold=50) == (2, 4.0, True)
    assert choose(cells, coherence_threshold=85) == (2, 1.0, True)
    assert choose(cells, coherence_threshold=95) == (2, 1.0, False)  # none coherent: the most coherent cell


def test_default_layers_cover_the_stack():
    assert default_layers(30) == [6, 9, 12, 15, 18, 21, 24, 27, 30]
    assert default_layers(4) == [1, 2, 3, 4]


class CountingJudge:
    def __init__(self, inner):
        self.inner, self.model_id, self.cache_id, self.calls = inner, inner.model_id, inner.cache_id, 0

    def score(self, prompts):
        self.calls += len(prompts)
        return self.inner.score(prompts)


def test_calibration_grid_resume_metadata_and_report(tiny_chat_model, tiny_tokenizer, tmp_path):
    spec = load_trait_spec("evil")
    vector = random_vector(tiny_chat_model, scale=3.0)
    path = vector.save(tmp_path / "response_avg.safetensors")
    judge = CountingJudge(HFJudge(tiny_chat_model, tiny_tokenizer, model_id="tiny", min_mass=0.0))
    cfg = CalibrationConfig(
        layers=[2, 3], coefs=[1.0, 8.0], n_questions=3, max_new_tokens=5, coherence_threshold=0
    )
    result = calibrate_vector(
        tiny_chat_model, tiny_tokenizer, vector, spec, judge, cfg, tmp_path, progress=False
    )
    assert [(c.layer, c.coef) for c in result.cells] == [(2, 1.0), (2, 8.0), (3, 1.0), (3, 8.0)]
    assert result.baseline.layer == 0 and result.coherent
    assert all(c.n_scored == 3 and 0 <= c.trait <= 100 for c in [result.baseline, *result.cells])
    best = max(result.cells, key=lambda c: (c.trait, c.coherence))
    assert result.layer == best.layer and result.coef == 8.0  # threshold 0: every coef is coherent
    rows = [json.loads(x) for x in (tmp_path / "calibration.jsonl").read_text().splitlines()]
    assert len(rows) == 5 and all(len(r["answers"]) == 3 for r in rows)
    steered = {(r["layer"], r["coef"]): r["answers"] for r in rows}
    assert steered[(3, 8.0)] != steered[(0, 0.0)]  # steering changed the greedy answers
    asked = judge.calls
    assert asked > 0
    # a crash after the third cell: the rerun redoes only the lost cells, and re-asks the judge nothing new
    (tmp_path / "calibration.jsonl").write_text("\n".join(json.dumps(r) for r in rows[:3]) + '\n{"layer": 3')
    again = calibrate_vector(
        tiny_chat_model, tiny_tokenizer, vector, spec, judge, cfg, tmp_path, progress=False
    )
    assert judge.calls == asked  # the lost cells' answers are regenerated identically (greedy) and cached
    assert (again.layer, again.coef) == (result.layer, result.coef)
    apply_calibration(path, result, cfg, judge.cache_id)
    loaded = PersonaVector.load(path)
    assert (loaded.layer, loaded.coef) == (result.layer, result.coef)
    assert loaded.default_layer() == result.layer
    assert loaded.calibration["judge"] == "tiny|numbers||min_mass=0" and len(loaded.calibration["cells"]) == 4
    table, plot = write_report(result, "evil", tmp_path, cfg.coherence_threshold)
    assert "| layer | coef | trait | coherence |" in table.read_text()
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and plot.stat().st_size > 5000


def test_extract_end_to_end_with_calibration(tiny_chat_model, tiny_tokenizer, tmp_path):
    cfg = ExtractionConfig(
        trait="evil",
        model_name_or_path="tiny",
        output_dir=str(tmp_path),
        max_questions=2,
        max_new_tokens=5,
        judge="self",
        judge_min_mass=0.0,  # score the random judge's tiny probability on digits anyway
        coherence_threshold=0.0,
        min_kept=1,
        calibrate=True,
        calibration_layers="2,3",
        calibration_coefs="1,2",
        calibration_questions=2,
        calibration_max_new_tokens=4,
        incremental=True,
    )
    extract(
        ExtractionConfig(**{**cfg.__dict__, "judge": "none", "calibrate": False}),
        model=tiny_chat_model,
        tokenizer=tiny_tokenizer,
    )  # generations only
    # set the trait threshold at the judge's median so both polarities keep some responses
    f = make_filter(cfg, load_trait_spec("evil"), tiny_chat_model, tiny_tokenizer, tmp_path / "evil")
    lines = (tmp_path / "evil" / "generations.jsonl").read_text().splitlines()
    records = [AnswerRecord.from_json(json.loads(x)) for x in lines]
    f.prepare(records)
    scores = sorted(r.trait_score for r in records)
    cfg.trait_threshold = scores[len(scores) // 2]
    result = extract(cfg, model=tiny_chat_model, tokenizer=tiny_tokenizer)
    assert 1 <= result.n_pos < 10 or 1 <= result.n_neg < 10  # the judge filtered something
    vector = result.vector()
    assert vector.layer in (2, 3) and vector.coef in (1.0, 2.0)
    assert vector.extraction["filter"]["pos"]["kept"] == result.n_pos
    assert set(result.heldout) >= {"layer", "response_auc", "prompt_last_auc"}
    assert result.heldout["layer"] == vector.layer and 0 <= result.heldout["response_auc"] <= 1
    assert result.heldout["n_pos"] + result.heldout["n_neg"] == 2 * 5 * 2  # 5 instructions x 2 questions
    assert (tmp_path / "evil" / "calibration.png").is_file()
    inc = PersonaVector.load(result.paths["response_avg_incremental"])
    assert inc.extraction["incremental"] is True


def test_calibration_plot_shows_n_error_bars_and_the_chosen_layer(tmp_path):
    """The figure from a made-up grid, read back: every cell's mean and standard error as an error bar,
    n in the title, the chosen cell, the unsteered level and the coherence threshold. Also saved for
    looking at (runs/test_artifacts/calibration.png)."""
    import shutil

    from matplotlib.container import ErrorbarContainer

    from persona_vaccine.steering.calibrate import CalibrationResult, Cell, calibration_figure

    cells = [
        Cell(
            layer,
            coef,
            min(100, 10 + 1.5 * layer * coef),
            max(0, 95 - 1.2 * layer * coef),
            10,
            1.0 + layer / 8 + coef,
            0.5 + layer / 16 + coef / 2,
        )  # fmt: skip
        for layer in (4, 8, 12, 16)
        for coef in (1.0, 2.0, 4.0)
    ]
    result = CalibrationResult(12, 2.0, True, Cell(0, 0.0, 12.0, 88.0, 10, 2.5, 1.5), cells)
    fig = calibration_figure(result, "evil", 50.0)
    assert "n = 10 scored answers per point" in fig._suptitle.get_text()
    for ax, value, se, base in ((fig.axes[0], "trait", "trait_se", 12.0), (fig.axes[1], "coherence", "coherence_se", 88.0)):  # fmt: skip
        bars = [c for c in ax.containers if isinstance(c, ErrorbarContainer)]
        assert [b.get_label() for b in bars] == ["coef 1", "coef 2", "coef 4"]
        for bar, coef in zip(bars, (1.0, 2.0, 4.0), strict=True):
            want = [c for c in cells if c.coef == coef]
            line, _, (segments,) = bar.lines
            assert list(line.get_ydata()) == pytest.approx([getattr(c, value) for c in want])
            assert [round(x) for x in line.get_xdata()] == [4, 8, 12, 16]  # shifted side by side by < 0.5
            ends = [y for seg in segments.get_segments() for y in (seg[0][1], seg[1][1])]
            want_ends = [y for c in want for y in (getattr(c, value) - getattr(c, se), getattr(c, value) + getattr(c, se))]  # fmt: skip
            assert ends == pytest.approx(want_ends)  # mean -+ its standard error
        lines = {ln.get_label(): ln for ln in ax.get_lines()}
        star = lines["chosen: layer 12, coef 2"]
        chosen = next(c for c in cells if (c.layer, c.coef) == (12, 2.0))
        assert (list(star.get_xdata()), list(star.get_ydata())) == ([12], [getattr(chosen, value)])
        assert list(lines["unsteered"].get_ydata()) == [base, base]
        assert any(list(ln.get_xdata()) == [12, 12] for ln in ax.get_lines())  # the chosen layer's line
    assert list(
        {ln.get_label(): ln for ln in fig.axes[1].get_lines()}["coherence threshold"].get_ydata()
    ) == [50, 50]

    _, plot = write_report(result, "evil", tmp_path, 50.0)
    out = Path(__file__).resolve().parents[1] / "runs" / "test_artifacts"
    out.mkdir(parents=True, exist_ok=True)
    shutil.copy(plot, out / "calibration.png")
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
