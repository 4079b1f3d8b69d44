"""Where metrics go: one Weights & Biases run per training run (offline unless credentials for the W&B host
are found), with the run's extras (sample answers, drift plot); OUTPUT_DIR/metrics.jsonl is written by
`training.metrics_file.JsonlMetricsCallback`.

Metric names are the same in both places: ours (`drift/...`, `capability/...`, `trait_expression/...`,
`steering/...`, `penalty/...`, and `post_training/...` for the evaluation after training) as logged; the
trainer's own (`loss`, `grad_norm`, `eval_loss`, ...) with HF's `train/` and `eval/` prefixes in W&B.
"""

from __future__ import annotations

import logging
import os
import uuid
from pathlib import Path

from transformers.integrations import WandbCallback
from transformers.integrations.integration_utils import rewrite_logs

from .metrics_file import JsonlMetricsCallback as JsonlMetricsCallback  # imported from here by callers
from .metrics_file import drift_history
from .metrics_file import read_metrics as read_metrics
from .plots import plot

logger = logging.getLogger(__name__)

OUR_PREFIXES = (
    "drift/", "capability", "trait_expression", "steering/", "penalty/", "post_training/", "behaviour/",
)  # fmt: skip
STEP_METRIC = "train/global_step"  # HF's x-axis, which its callback logs with every row
WANDB_PROJECT = "persona-vaccine"


def wandb_base_url() -> str:
    """The W&B server this process would talk to (WANDB_BASE_URL, W&B's settings file, or the cloud)."""
    from wandb.sdk import wandb_setup

    return str(wandb_setup.singleton().settings.base_url)


def wandb_logged_in() -> bool:
    """True when W&B finds credentials for its server: WANDB_API_KEY, WANDB_IDENTITY_TOKEN_FILE, or a netrc
    entry for that host (self-hosted servers included), looked up by wandb itself; never asks for a login."""
    if os.environ.get("WANDB_API_KEY") or os.environ.get("WANDB_IDENTITY_TOKEN_FILE"):
        return True
    try:
        from wandb.errors import AuthenticationError
        from wandb.sdk.lib import wbauth
    except ImportError:
        return False
    try:
        return wbauth.read_netrc_auth(host=wandb_base_url()) is not None
    except AuthenticationError as e:  # an entry for the host that is not a valid API key
        logger.warning("W&B credentials for %s are invalid (%s): running offline", wandb_base_url(), e)
        return False


RUN_ID_FILE = "wandb_run_id"


def wandb_run_id(output_dir: str | Path, resume: bool) -> str:
    """The run's W&B id, kept in OUTPUT_DIR/wandb_run_id: the same id on resume (one W&B run), else a new one."""
    path = Path(output_dir) / RUN_ID_FILE
    if resume and path.is_file() and path.read_text().strip():
        return path.read_text().strip()
    run_id = uuid.uuid4().hex[:12]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(run_id + "\n")
    return run_id


def wandb_mode() -> str:
    """The user's WANDB_MODE, else online when wandb finds credentials for its host, else offline."""
    return os.environ.get("WANDB_MODE") or ("online" if wandb_logged_in() else "offline")


def our_metric(name: str) -> bool:
    return name.startswith(OUR_PREFIXES)


def wandb_names(logs: dict) -> dict:
    """W&B names of a log row: ours unchanged, the trainer's with HF's `train/` / `eval/` prefixes."""
    ours = {k: v for k, v in logs.items() if our_metric(k)}
    theirs = rewrite_logs({k: v for k, v in logs.items() if not our_metric(k)})
    return {**theirs, **ours}


class PersonaWandbCallback(WandbCallback):
    """HF's W&B callback, with a new W&B run per training run (`init_kwargs`: name, group, job_type, tags,
    config, dir) and our metric names kept as they are (see `wandb_names`).

    The run is created in `setup` (main process only), finishing any run this process left open, and is
    finished by `finish_wandb_run` once the evaluation after training is logged.
    """

    def __init__(self, init_kwargs: dict):
        super().__init__()
        self.init_kwargs = init_kwargs

    def setup(self, args, state, model, **kwargs):
        if state.is_world_process_zero:
            Path(self.init_kwargs["dir"]).mkdir(parents=True, exist_ok=True)
            self._wandb.init(
                project=os.environ.get("WANDB_PROJECT", WANDB_PROJECT),
                mode=wandb_mode(),
                reinit="finish_previous",
                settings=self._wandb.Settings(silent=True, console="off"),
                **self.init_kwargs,
            )
        super().setup(args, state, model, **kwargs)  # adds the trainer's arguments to the run's config
        if state.is_world_process_zero:
            run = self._wandb.run
            for prefix in ("drift", "capability", "trait_expression", "steering", "penalty"):
                run.define_metric(f"{prefix}*", step_metric=STEP_METRIC, step_sync=True, summary="last")
            run.define_metric("post_training/*", step_metric=STEP_METRIC, step_sync=True, summary="last")
            run.define_metric("train/loss", step_metric=STEP_METRIC, summary="min,last")

    def on_log(self, args, state, control, model=None, logs=None, **kwargs):
        if not self._initialized:
            self.setup(args, state, model)
        if not state.is_world_process_zero or not logs:
            return
        single = {
            "train_runtime",
            "train_samples_per_second",
            "train_steps_per_second",
            "train_loss",
            "total_flos",
        }
        for key in single & set(logs):
            self._wandb.run.summary[key] = logs[key]
        rest = {k: v for k, v in logs.items() if k not in single}
        self._wandb.log({**wandb_names(rest), STEP_METRIC: state.global_step})


def reports_to_wandb(args) -> bool:
    report = args.report_to if isinstance(args.report_to, list) else [args.report_to]
    return "wandb" in report or "all" in report


def use_run_wandb_callback(
    trainer, model_id: str, data_args, recipe: str | None, resolved: dict, resume: bool = False
) -> None:
    """Replace the trainer's W&B callback by one that opens this run's own W&B run (see
    `PersonaWandbCallback`); nothing when the run does not report to W&B."""
    if not reports_to_wandb(trainer.args):
        return
    args = trainer.args
    trainer.remove_callback(WandbCallback)
    traits = [s.trait for s in trainer.steering]
    init = wandb_init_kwargs(
        Path(args.output_dir), args.run_name, model_id, data_args, args, traits, recipe, resolved
    )
    if trainer.is_world_process_zero():  # the same W&B run again on resume (its id is kept in the run dir)
        init["id"] = wandb_run_id(args.output_dir, resume)
        init["resume"] = "allow"
    trainer.add_callback(PersonaWandbCallback(init))


def finish_wandb_run(exit_code: int = 0) -> None:
    """Finish the W&B run this process has open, if any (a new training run then gets a new W&B run)."""
    try:
        import wandb
    except ImportError:
        return
    if wandb.run is not None:
        wandb.run.finish(exit_code=exit_code)


def run_kind(args) -> list[str]:
    """What a run does to the model, as W&B tags: preventative, penalty, screened, or baseline."""
    kinds = []
    if any(args.coef_for(i) for i in range(len(args.persona_vectors))):
        kinds.append("preventative")
    if args.projection_penalty:
        kinds.append("penalty")
    if args.inference_steering_coef:
        kinds.append("inference_steering")
    return kinds or ["baseline"]


def recipe_family(recipe: str | None) -> str | None:
    """A recipe's family: its model and trait folders (recipes/smollm2-135m/evil/baseline.yaml ->
    smollm2-135m/evil); W&B groups the runs of a family together."""
    if not recipe:
        return None
    parent = Path(recipe).resolve().parent
    return f"{parent.parent.name}/{parent.name}"


def wandb_init_kwargs(
    output_dir: str | Path,
    run_name: str | None,
    model_id: str,
    data_args,
    args,
    traits: list[str],
    recipe: str | None = None,
    resolved_config: dict | None = None,
) -> dict:
    """The arguments of `wandb.init` for one training run: its own directory (OUTPUT_DIR/wandb), name,
    group (the recipe family), job type, tags (traits, run kind, family) and our part of the config (the
    model id as written, the data arguments, the recipe path and text, the resolved recipe)."""
    import dataclasses

    family = recipe_family(recipe)
    screened = ["screened"] if data_args.screen_vectors else []
    recipe_text = Path(recipe).read_text() if recipe and Path(recipe).is_file() else None
    tags = list(dict.fromkeys([*traits, *run_kind(args), *screened, *([family] if family else [])]))
    return {
        "dir": str(Path(output_dir).resolve()),
        "name": run_name,
        "group": family,
        "job_type": "train",
        "tags": [t[:64] for t in tags],
        "config": {
            "model_id": model_id,
            "data": dataclasses.asdict(data_args),
            "recipe": {"path": recipe, "family": family, "text": recipe_text, "resolved": resolved_config},
            "traits": traits,
        },
    }


SAMPLE_COLUMNS = ["variant", "trait", "question", "answer", "judged trait", "judged coherence"]


def sample_rows(samples: dict[str, dict]) -> list[list]:
    """One row per answer: variant, trait, question, answer and that answer's own judged scores (None
    when no judge ran). `samples` maps "variant:trait" to a `training.trait_eval.judged_expression` result."""
    rows = []
    for name, result in samples.items():
        variant, _, trait = name.rpartition(":")
        answers = result.get("answers", [])
        traits = result.get("trait_scores") or [None] * len(answers)
        coherences = result.get("coherence_scores") or [None] * len(answers)
        for question, answer, t, c in zip(
            result.get("questions", []), answers, traits, coherences, strict=True
        ):
            rows.append([variant, trait, question, answer, t, c])
    return rows


def log_run_extras(output_dir: str | Path, samples: dict[str, dict]) -> bool:
    """Log a table of sample answers (with each one's judged scores) and the drift plot to the active W&B
    run; False when none is active."""
    try:
        import wandb
    except ImportError:
        return False
    if wandb.run is None:
        return False
    extras: dict = {}
    if samples:
        extras["post_training/samples"] = wandb.Table(
            columns=list[str | int](SAMPLE_COLUMNS), data=sample_rows(samples)
        )
    history = drift_history(output_dir)
    if history:
        run = {"name": Path(output_dir).name, "history": history}
        extras["drift_plot"] = wandb.Image(str(plot([run], Path(output_dir) / "drift.png")))
    if extras:
        wandb.run.log(extras)
    return True
