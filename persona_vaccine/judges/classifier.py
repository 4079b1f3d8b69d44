"""An offline trait judge: TF-IDF + logistic regression trained on a trait's extraction responses.

Trained on the (filtered) pos- and neg-prompted responses of `generations.jsonl` (label: the system
prompt), evaluated on the held-out answers to the evaluation questions (`heldout.jsonl`, AUC of pos
vs neg). Saved as plain JSON (vocabulary, idf, weights): loading executes no code, like the vectors.

As a `Judge` it scores filled rubrics: the answer is read back out of the trait rubric and scored
100 * P(trait). It judges the trait only: the coherence rubric gets 100 (every answer counts as
coherent), so with it a coherence threshold keeps everything.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Sequence
from pathlib import Path

from persona_vaccine.cli_args import command_name, prog

FORMAT = "persona-vaccine/tfidf-logreg/1"
FILE_NAME = "classifier_judge.json"
VECTORIZER = {"ngram_range": [1, 2], "sublinear_tf": True, "lowercase": True, "min_df": 1}


class ClassifierJudgeError(ValueError):
    """A classifier judge file that can't be used; the message names the file and the fix."""


def _rubric_pattern(rubric: str) -> re.Pattern[str]:
    """A regex that reads question and answer back out of `fill_rubric(rubric, q, a)`."""
    parts = re.split(r"(\{question\}|\{answer\})", rubric)
    regex = "".join(
        "(?P<question>.*)" if p == "{question}" else "(?P<answer>.*)" if p == "{answer}" else re.escape(p)
        for p in parts
    )
    return re.compile(regex, re.DOTALL)


def _auc(scores: Sequence[float], labels: Sequence[int]) -> float | None:
    from sklearn.metrics import roc_auc_score

    return float(roc_auc_score(labels, scores)) if len(set(labels)) == 2 else None


class ClassifierJudge:
    """TF-IDF + logistic regression on answer text; `score` follows the Judge protocol."""

    def __init__(self, trait: str, rubric: str, vocabulary: list[str], idf: list[float], coef: list[float],
                 intercept: float, info: dict | None = None):  # fmt: skip
        import numpy as np
        from sklearn.feature_extraction.text import TfidfVectorizer

        if not (len(vocabulary) == len(idf) == len(coef)):
            raise ClassifierJudgeError(
                f"classifier judge '{trait}': vocabulary, idf and coef lengths differ; retrain it"
            )
        self.trait, self.rubric = trait, rubric
        self.vocabulary, self.idf, self.coef, self.intercept = vocabulary, idf, coef, intercept
        self.info = dict(info or {})
        self._vectorizer = TfidfVectorizer(
            ngram_range=tuple(VECTORIZER["ngram_range"]),  # type: ignore[arg-type]
            sublinear_tf=bool(VECTORIZER["sublinear_tf"]),
            lowercase=bool(VECTORIZER["lowercase"]),
            vocabulary={term: i for i, term in enumerate(vocabulary)},
        )
        self._vectorizer.idf_ = np.asarray(idf, dtype=np.float64)
        self._coef = np.asarray(coef, dtype=np.float64)
        self._pattern = _rubric_pattern(rubric)
        from persona_vaccine.judges.scores import COHERENCE_RUBRIC

        self._coherence = _rubric_pattern(COHERENCE_RUBRIC)
        digest = hashlib.sha256(json.dumps([vocabulary, coef, intercept]).encode()).hexdigest()[:12]
        self.model_id = f"classifier:{trait}"
        self.cache_id = f"classifier:{trait}:{digest}"

    # --- training -------------------------------------------------------------------------------
    @classmethod
    def train(
        cls,
        trait: str,
        rubric: str,
        texts: Sequence[str],
        labels: Sequence[int],
        heldout: tuple[Sequence[str], Sequence[int]] | None = None,
        c: float = 1.0,
    ) -> ClassifierJudge:
        """Fit on `texts` (label 1: trait-expressing); with `heldout`, store its AUC as info['heldout_auc']."""
        from sklearn.feature_extraction.text import TfidfVectorizer
        from sklearn.linear_model import LogisticRegression

        if len(set(labels)) != 2:
            raise ClassifierJudgeError(
                f"classifier judge '{trait}': needs both pos and neg responses to train"
            )
        vectorizer = TfidfVectorizer(
            ngram_range=tuple(VECTORIZER["ngram_range"]),  # type: ignore[arg-type]
            sublinear_tf=bool(VECTORIZER["sublinear_tf"]),
            lowercase=bool(VECTORIZER["lowercase"]),
        )
        x = vectorizer.fit_transform(list(texts))
        model = LogisticRegression(C=c, max_iter=1000).fit(x, list(labels))
        order = sorted(vectorizer.vocabulary_, key=vectorizer.vocabulary_.__getitem__)
        info: dict = {"n_train_pos": int(sum(labels)), "n_train_neg": len(labels) - int(sum(labels)), "C": c}
        info["train_auc"] = _auc(model.decision_function(x).tolist(), list(labels))
        judge = cls(trait, rubric, order, vectorizer.idf_.tolist(), model.coef_[0].tolist(),
                    float(model.intercept_[0]), info)  # fmt: skip
        if heldout is not None:
            h_texts, h_labels = heldout
            judge.info["heldout_auc"] = _auc(judge.probabilities(h_texts), list(h_labels))
            judge.info["n_heldout"] = len(h_labels)
        return judge

    # --- scoring --------------------------------------------------------------------------------
    def probabilities(self, answers: Sequence[str]) -> list[float]:
        """P(trait) of each answer text."""
        if not answers:
            return []
        x = self._vectorizer.transform(list(answers))
        logits = x @ self._coef + self.intercept
        return [1.0 / (1.0 + math.exp(-float(z))) for z in logits]

    def score(self, prompts: list[str]) -> list[float | None]:
        """0..100 per filled rubric: 100 * P(trait) for the trait rubric, 100 for the coherence rubric."""
        out: list[float | None] = [None] * len(prompts)
        todo: list[tuple[int, str]] = []
        for i, prompt in enumerate(prompts):
            match = self._pattern.fullmatch(prompt)
            if match is not None:
                todo.append((i, match.group("answer")))
            elif self._coherence.fullmatch(prompt) is not None:
                out[i] = 100.0
        for (i, _), p in zip(todo, self.probabilities([a for _, a in todo]), strict=True):
            out[i] = 100.0 * p
        return out

    # --- files ----------------------------------------------------------------------------------
    def save(self, path: str | Path) -> Path:
        path = Path(path)
        data = {
            "format": FORMAT,
            "trait": self.trait,
            "rubric": self.rubric,
            "vectorizer": VECTORIZER,
            "info": self.info,
            "intercept": self.intercept,
            "vocabulary": self.vocabulary,
            "idf": self.idf,
            "coef": self.coef,
        }
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(path.suffix + ".tmp")
        tmp.write_text(json.dumps(data))
        tmp.replace(path)
        return path

    @classmethod
    def load(cls, path: str | Path) -> ClassifierJudge:
        path = Path(path)
        if path.is_dir():
            path = path / FILE_NAME
        if not path.is_file():
            raise ClassifierJudgeError(
                f"{path}: no classifier judge file; train one with `{command_name()} classifier TRAIT_DIR`"
            )
        try:
            data = json.loads(path.read_text())
        except json.JSONDecodeError as e:
            raise ClassifierJudgeError(f"{path}: not JSON ({e.msg}); retrain the classifier judge") from None
        if data.get("format") != FORMAT or data.get("vectorizer") != VECTORIZER:
            raise ClassifierJudgeError(
                f"{path}: field 'format' is {data.get('format')!r} (expected {FORMAT!r}); retrain the classifier"
            )
        return cls(data["trait"], data["rubric"], data["vocabulary"], data["idf"], data["coef"],
                   float(data["intercept"]), data.get("info"))  # fmt: skip


class ClassifierJudges:
    """Several traits' classifier judges as one judge: each prompt is scored by the one whose rubric it fills."""

    def __init__(self, paths: Sequence[str | Path]):
        self.judges = [ClassifierJudge.load(p) for p in paths]
        traits = [j.trait for j in self.judges]
        if len(set(traits)) != len(traits):
            raise ClassifierJudgeError(
                f"classifier judges {list(map(str, paths))}: one per trait, got {traits}"
            )
        self.model_id = "classifier:" + "+".join(traits)
        self.cache_id = "+".join(j.cache_id for j in self.judges)

    def score(self, prompts: list[str]) -> list[float | None]:
        """Each judge scores only its own trait's rubric (and coherence), so the first score found is it."""
        out: list[float | None] = [None] * len(prompts)
        for judge in self.judges:
            scores = judge.score(prompts)
            out = [found if found is not None else new for found, new in zip(out, scores, strict=True)]
        return out


def _read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _kept(records: list[dict], trait_dir: Path) -> list[dict]:
    """The records the extraction's filter kept (judgments.jsonl + its thresholds), else every non-empty one."""
    records = [r for r in records if str(r.get("response", "")).strip()]
    judgments, summary = trait_dir / "judgments.jsonl", trait_dir / "extraction.json"
    if not (judgments.is_file() and summary.is_file()):
        return records
    counts = json.loads(summary.read_text()).get("filter") or {}
    if counts.get("filter") != "judge":
        return records
    scores = {j["key"]: j for j in _read_jsonl(judgments)}
    kept = []
    for r in records:
        j = scores.get(r["key"], {})
        trait, coherence = j.get("trait_score"), j.get("coherence_score")
        if trait is None or coherence is None or coherence < counts["coherence_threshold"]:
            continue
        if (trait >= counts["trait_threshold"]) == (r["polarity"] == "pos"):
            kept.append(r)
    return kept


def train_from_extraction(trait_dir: str | Path, trait: str | None = None, c: float = 1.0) -> ClassifierJudge:
    """Train on TRAIT_DIR/generations.jsonl (filtered as the extraction did), evaluate on heldout.jsonl
    (the evaluation questions' answers; without it, on a quarter of the extraction questions, left out of
    training), save TRAIT_DIR/classifier_judge.json; returns the judge (its info holds the AUCs)."""
    from persona_vaccine.traits import load_trait_spec

    trait_dir = Path(trait_dir)
    generations = trait_dir / "generations.jsonl"
    if not generations.is_file():
        raise ClassifierJudgeError(
            f"{generations}: not found; run `{command_name()} extract` for the trait first"
        )
    records = _kept(_read_jsonl(generations), trait_dir)
    spec = load_trait_spec(trait or trait_dir.name)
    heldout_path = trait_dir / "heldout.jsonl"
    if heldout_path.is_file():
        rows = [r for r in _read_jsonl(heldout_path) if str(r.get("response", "")).strip()]
        source = str(heldout_path)
    else:  # no held-out answers: every 4th extraction question is held out (all its answers)
        questions = sorted({r["question"] for r in records})
        held = set(questions[::4])
        rows = [r for r in records if r["question"] in held]
        records = [r for r in records if r["question"] not in held]
        source = f"{generations} ({len(held)} of {len(questions)} questions held out)"
    heldout = ([r["response"] for r in rows], [int(r["polarity"] == "pos") for r in rows])
    judge = ClassifierJudge.train(
        spec.trait,
        spec.judge_rubric,
        [r["response"] for r in records],
        [int(r["polarity"] == "pos") for r in records],
        heldout,
        c,
    )
    judge.info["trained_on"] = str(generations)
    judge.info["heldout_source"] = source
    judge.save(trait_dir / FILE_NAME)
    return judge


def cli(argv: list[str]) -> int:
    """`launch.py classifier TRAIT_DIR`: train the classifier judge of an extraction and print its AUCs."""
    from persona_vaccine.cli_args import ArgumentParser

    parser = ArgumentParser(prog=prog("classifier"), description=(cli.__doc__ or "").split(": ", 1)[-1])
    parser.add_argument(
        "trait_dir", help="an extraction's trait directory (generations.jsonl, heldout.jsonl)"
    )
    parser.add_argument(
        "--trait", default=None, help="trait spec name or path (default: the directory's name)"
    )
    parser.add_argument(
        "--C", type=float, default=1.0, help="inverse regularisation of the logistic regression"
    )
    opts = parser.parse_args(argv)
    judge = train_from_extraction(opts.trait_dir, opts.trait, opts.C)
    print(json.dumps({k: judge.info.get(k) for k in ("n_train_pos", "n_train_neg", "train_auc", "heldout_auc",
                                                      "n_heldout")}))  # fmt: skip
    print(f"written: {Path(opts.trait_dir) / FILE_NAME}  (use it as --judge classifier:{opts.trait_dir})")
    return 0
