"""The serving side of the vLLM readings: a ZeroMQ socket the workers send each step's readings to,
gathered per request tag into the same `TraitReading`s the Hugging Face monitor gives."""

from __future__ import annotations

import json
import os
import tempfile
import threading
import uuid
from dataclasses import dataclass, field
from typing import Any

from .readings import TraitReading
from .vllm_worker import READINGS_ADDRESS_ENV


@dataclass
class CollectedReadings:
    """Everything the workers sent for one request so far."""

    readings: dict[str, TraitReading] = field(default_factory=dict)
    alerts: list[dict] = field(default_factory=list)
    stop: bool = False

    def merge(self, event: dict) -> None:
        for trait, values in event["tokens"].items():
            self.readings.setdefault(trait, TraitReading()).tokens.extend(values)
        for trait, turns in event["turns"].items():
            self.readings[trait].turns = turns
        for trait, reading in self.readings.items():
            if reading.tokens and reading.prompt_last is None:
                reading.prompt_last = reading.tokens[0]
            reading.capped = event["capped"].get(trait, reading.capped)
            reading.steered = event["steered"].get(trait, reading.steered)
        self.alerts.extend(event["alerts"])
        self.stop = self.stop or event["stop"]

    def count(self, traits: list[str] | None = None) -> int:
        """Readings every watched trait has (tokens[0] is the last prompt token)."""
        names = traits if traits is not None else list(self.readings)
        return min((len(self.readings[t].tokens) if t in self.readings else 0 for t in names), default=0)


class ReadingsReader:
    """Bind the socket and publish its address to the engine's processes (through the environment)."""

    def __init__(self) -> None:
        import zmq

        self.context: Any = zmq.Context.instance()
        self.socket = self.context.socket(zmq.PULL)
        path = os.path.join(tempfile.gettempdir(), f"persona-readings-{os.getpid()}-{uuid.uuid4().hex[:8]}")
        self.address = f"ipc://{path}"
        self.path = path
        self.socket.bind(self.address)
        os.environ[READINGS_ADDRESS_ENV] = self.address
        self.collected: dict[str, CollectedReadings] = {}
        self.changed = threading.Condition()
        self.closed = False
        self.thread = threading.Thread(target=self._run, name="persona-readings", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while not self.closed:
            if not self.socket.poll(200):
                continue
            events = json.loads(self.socket.recv())
            with self.changed:
                for event in events:
                    self.collected.setdefault(event["tag"], CollectedReadings()).merge(event)
                self.changed.notify_all()

    def wait(
        self, tag: str, count: int, traits: list[str] | None = None, timeout: float = 10.0
    ) -> CollectedReadings:
        """The request's readings once each trait has at least `count` of them (or the timeout passed)."""
        with self.changed:
            self.changed.wait_for(lambda: self._count(tag, traits) >= count, timeout)
            return self.collected.setdefault(tag, CollectedReadings())

    def _count(self, tag: str, traits: list[str] | None) -> int:
        found = self.collected.get(tag)
        return found.count(traits) if found is not None else 0

    def pop(self, tag: str) -> CollectedReadings:
        with self.changed:
            return self.collected.pop(tag, CollectedReadings())

    def close(self) -> None:
        self.closed = True
        self.thread.join(timeout=2)
        self.socket.close(linger=0)
        if os.environ.get(READINGS_ADDRESS_ENV) == self.address:
            del os.environ[READINGS_ADDRESS_ENV]
        if os.path.exists(self.path):
            os.unlink(self.path)
