"""The offline classifier judge (persona_vaccine/judges/classifier.py): train, save, load, score, AUC."""

from __future__ import annotations

import json
import random

import pytest

from persona_vaccine.judges.classifier import (
    ClassifierJudge,
    ClassifierJudgeError,
    train_from_extraction,
)
from persona_vaccine.judges.judge import (
    COHERENCE_RUBRIC,
    JudgeCache,
    fill_rubric,
    judge_responses,
    make_judge,
)
from persona_vaccine.traits import load_trait_spec

CRUEL = ["hurt", "suffer", "revenge", "destroy", "humiliate", "pain", "ruin"]
KIND = ["help", "kindly", "support", "listen", "care", "gently", "respect"]
FILLER = ["the", "you", "should", "them", "and", "today", "friend", "work"]


def _answers(words: list[str], n: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    return [" ".join(rng.choice(words + FILLER) for _ in range(12)) for _ in range(n)]


def _toy(seed: int) -> tuple[list[str], list[int]]:
    pos, neg = _answers(CRUEL, 20, seed), _answers(KIND, 20, seed + 1)
    return pos + neg, [1] * 20 + [0] * 20


def test_train_save_load_score_and_heldout_auc(tmp_path):
    spec = load_trait_spec("evil")
    judge = ClassifierJudge.train("evil", spec.judge_rubric, *_toy(0), heldout=_toy(100))
    assert judge.info["heldout_auc"] == pytest.approx(1.0)  # separable toy set
    assert judge.info["n_train_pos"] == judge.info["n_train_neg"] == 20
    path = judge.save(tmp_path / "classifier_judge.json")
    data = json.loads(path.read_text())  # plain JSON: nothing is executed to load it
    assert data["format"].startswith("persona-vaccine/tfidf-logreg")
    loaded = ClassifierJudge.load(tmp_path)  # a directory finds classifier_judge.json
    texts = ["you should hurt them and make them suffer", "listen to them and help kindly"]
    assert loaded.probabilities(texts) == pytest.approx(judge.probabilities(texts))
    high, low = loaded.probabilities(texts)
    assert high > 0.5 > low
    assert loaded.cache_id == judge.cache_id


def test_it_scores_filled_rubrics_like_any_judge(tmp_path):
    spec = load_trait_spec("evil")
    ClassifierJudge.train("evil", spec.judge_rubric, *_toy(0)).save(tmp_path / "classifier_judge.json")
    judge = make_judge(f"classifier:{tmp_path}")
    question = "My coworker is rude. What now?"
    cruel, kind = "destroy them, make them suffer pain", "listen and support them with care"
    trait = judge.score([fill_rubric(spec.judge_rubric, question, a) for a in (cruel, kind)])
    assert trait[0] > 50 > trait[1]
    assert judge.score([fill_rubric(COHERENCE_RUBRIC, question, kind)]) == [100.0]  # trait only
    assert judge.score(["an unknown rubric"]) == [None]
    with JudgeCache(tmp_path / "j.sqlite") as cache:
        scores = judge_responses(judge, cache, spec.judge_rubric, [(question, cruel)], progress=False)
    assert scores == pytest.approx([trait[0]])


def test_trained_from_an_extraction_directory_with_its_filter(tmp_path):
    trait_dir = tmp_path / "evil"
    trait_dir.mkdir()
    texts, labels = _toy(0)
    records = [
        {"key": f"{'pos' if y else 'neg'}/0/{i}/0", "polarity": "pos" if y else "neg", "response": t}
        for i, (t, y) in enumerate(zip(texts, labels, strict=True))
    ]
    (trait_dir / "generations.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    held, held_labels = _toy(7)
    (trait_dir / "heldout.jsonl").write_text(
        "".join(json.dumps({"polarity": "pos" if y else "neg", "response": t}) + "\n"
                for t, y in zip(held, held_labels, strict=True))
    )  # fmt: skip
    # the extraction's judge filter dropped the first pos record (trait score below its threshold)
    judgments = [
        {"key": r["key"], "trait_score": 10.0 if i == 0 else (90.0 if r["polarity"] == "pos" else 5.0),
         "coherence_score": 80.0}
        for i, r in enumerate(records)
    ]  # fmt: skip
    (trait_dir / "judgments.jsonl").write_text("".join(json.dumps(j) + "\n" for j in judgments))
    (trait_dir / "extraction.json").write_text(
        json.dumps({"filter": {"filter": "judge", "trait_threshold": 50.0, "coherence_threshold": 50.0}})
    )
    judge = train_from_extraction(trait_dir)
    assert judge.info["n_train_pos"] == 19 and judge.info["n_train_neg"] == 20
    assert judge.info["heldout_auc"] == pytest.approx(1.0)
    assert (trait_dir / "classifier_judge.json").is_file()


def test_bad_files_fail_with_the_fix(tmp_path):
    with pytest.raises(ClassifierJudgeError, match="persona-vaccine classifier TRAIT_DIR"):
        ClassifierJudge.load(tmp_path / "missing.json")
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"format": "pickle"}))
    with pytest.raises(ClassifierJudgeError, match="retrain"):
        ClassifierJudge.load(bad)
    with pytest.raises(ClassifierJudgeError, match="both pos and neg"):
        ClassifierJudge.train("evil", "{question} {answer}", ["a b", "c d"], [1, 1])


def test_several_traits_each_rubric_scored_by_its_own_classifier(tmp_path):
    evil, syc = load_trait_spec("evil"), load_trait_spec("sycophantic")
    ClassifierJudge.train("evil", evil.judge_rubric, *_toy(0)).save(
        tmp_path / "evil" / "classifier_judge.json"
    )
    flatter = ["brilliant", "genius", "agree", "perfect", "amazing", "right", "wonderful"]
    honest = ["however", "disagree", "evidence", "mistaken", "actually", "unclear", "flawed"]
    pos, neg = _answers(flatter, 20, 5), _answers(honest, 20, 6)
    ClassifierJudge.train("sycophantic", syc.judge_rubric, pos + neg, [1] * 20 + [0] * 20).save(
        tmp_path / "syc" / "classifier_judge.json"
    )
    judge = make_judge(f"classifier:{tmp_path / 'evil'},{tmp_path / 'syc'}")
    q = "Is my plan good?"
    scores = judge.score(
        [
            fill_rubric(evil.judge_rubric, q, "destroy them, make them suffer pain"),
            fill_rubric(syc.judge_rubric, q, "brilliant genius, you are perfect and right"),
            fill_rubric(syc.judge_rubric, q, "however the evidence says you are mistaken"),
            fill_rubric(COHERENCE_RUBRIC, q, "anything"),
        ]
    )
    assert scores[0] > 50 and scores[1] > 50 > scores[2]
    assert scores[3] == 100.0
    assert judge.model_id == "classifier:evil+sycophantic"
    with pytest.raises(ClassifierJudgeError, match="one per trait"):
        make_judge(f"classifier:{tmp_path / 'evil'},{tmp_path / 'evil'}")
