"""Alerts on trait drift during training: `drift/<trait>/shift` above a threshold logs a warning, sends
a W&B alert (when W&B runs online), posts to a webhook, and above `drift_stop_above` stops training."""

from __future__ import annotations

import logging
import os
from typing import Any

from .meters import MeterCallback

logger = logging.getLogger(__name__)


def parse_levels(specs: list[str] | None, field: str) -> dict[str | None, float]:
    """`["0.5"]` (every trait) or `["evil=0.5"]` -> {trait or None: value}."""
    out: dict[str | None, float] = {}
    for spec in specs or []:
        trait, _, value = str(spec).rpartition("=")
        try:
            out[trait or None] = float(value)
        except ValueError:
            raise ValueError(f"{field}: {spec!r} is not VALUE or TRAIT=VALUE with a number") from None
    return out


def _level(levels: dict[str | None, float], trait: str) -> float | None:
    return levels.get(trait, levels.get(None))


class DriftAlertCallback(MeterCallback):
    """Watches the logged drift shifts; `alerts` and `stopped` go into summary.json (`drift_alerts`)."""

    def __init__(
        self, alert_above: list[str] | None, stop_above: list[str] | None, webhook: str | None = None
    ):
        self.alert_above = parse_levels(alert_above, "drift_alert_above")
        self.stop_above = parse_levels(stop_above, "drift_stop_above")
        self.webhook = None
        if webhook:
            from persona_vaccine.monitoring.alerts import WebhookSink

            self.webhook = WebhookSink(webhook)
        self.alerts: list[dict] = []
        self.stopped: dict | None = None
        self._alerted: set[str] = set()

    @property
    def enabled(self) -> bool:
        return bool(self.alert_above or self.stop_above)

    def _notify(self, record: dict) -> None:
        message = (
            f"trait drift: {record['trait']} shift {record['shift']:+.3f} > {record['threshold']:+.3f} "
            f"at step {record['step']}" + (" (training stopped)" if record["action"] == "stop" else "")
        )
        logger.warning(message)
        try:
            import wandb

            if (
                wandb.run is not None
                and os.environ.get("WANDB_MODE", "online") != "offline"
                and not wandb.run.offline
            ):
                wandb.run.alert(title="persona-vaccine drift", text=message, level="WARN")
        except Exception as e:  # an alert must never break training
            logger.warning("W&B alert not sent: %s", e)
        if self.webhook is not None:
            self.webhook.send({"source": "training", **record})

    def on_log(self, args, state, control, logs=None, **kwargs):
        if not state.is_world_process_zero or not logs:
            return
        for key, value in logs.items():
            if not (key.startswith("drift/") and key.endswith("/shift")) or not isinstance(
                value, (int, float)
            ):
                continue
            trait = key[len("drift/") : -len("/shift")]
            stop, alert = _level(self.stop_above, trait), _level(self.alert_above, trait)
            record = {"trait": trait, "shift": float(value), "step": state.global_step}
            if stop is not None and value > stop:
                record.update(threshold=stop, action="stop")
                self.alerts.append(record)
                self.stopped = record
                control.should_training_stop = True
                self._notify(record)
            elif alert is not None and value > alert and trait not in self._alerted:
                self._alerted.add(trait)
                record.update(threshold=alert, action="alert")
                self.alerts.append(record)
                self._notify(record)

    def on_train_end(self, args, state, control, **kwargs):
        if self.webhook is not None:
            self.webhook.close()

    def summary_fields(self) -> dict[str, Any]:
        return {"drift_alerts": self.summary()} if self.enabled else {}

    def summary(self) -> dict:
        return {
            "alert_above": {k or "*": v for k, v in self.alert_above.items()},
            "stop_above": {k or "*": v for k, v in self.stop_above.items()},
            "alerts": self.alerts,
            "stopped": self.stopped,
        }
