"""Drift alerts during training: a real (tiny) training run stops on drift_stop_above; the webhook hears it."""

from __future__ import annotations

import json

import pytest
from server_helpers import webhook_receiver
from test_launch import _train, tiny_setup  # noqa: F401 (the fixture)
from transformers import TrainerControl, TrainerState

from persona_vaccine.training.drift_alerts import DriftAlertCallback, parse_levels


def test_alert_once_per_trait_and_stop_above():
    callback = DriftAlertCallback(["0.5"], ["evil=2.0"])
    state, control = TrainerState(), TrainerControl()
    for step, shift in enumerate([0.1, 0.6, 0.7, 2.5], start=1):
        state.global_step = step
        callback.on_log(None, state, control, logs={"drift/evil/shift": shift, "drift/evil/projection": 9.0})
        assert control.should_training_stop == (shift > 2.0)
    assert [(a["step"], a["action"]) for a in callback.alerts] == [(2, "alert"), (4, "stop")]
    assert callback.summary()["stopped"]["shift"] == 2.5


def test_bad_level_names_the_field():
    with pytest.raises(ValueError, match="drift_stop_above: 'evil=high'"):
        parse_levels(["evil=high"], "drift_stop_above")


def test_training_stops_on_drift_and_posts_the_alert(tiny_setup, caplog):  # noqa: F811
    root, recipe = tiny_setup
    out = root / "drift_stop"
    with webhook_receiver() as (url, received):
        proc = _train(
            recipe,
            root,
            "--output_dir",
            str(out),
            "--drift_stop_above",
            "evil=-1000",
            "--drift_alert_webhook",
            url,
        )
        assert proc.returncode == 0, proc.stderr[-3000:]
        summary = json.loads((out / "summary.json").read_text())
        assert summary["train"]["steps"] == 1  # stopped at the first logged drift, not after 3 steps
        stopped = summary["drift_alerts"]["stopped"]
        assert stopped["trait"] == "evil" and stopped["step"] == 1 and stopped["threshold"] == -1000
        assert "trait drift: evil shift" in proc.stderr + caplog.text
        assert received and received[0]["source"] == "training" and received[0]["action"] == "stop"
