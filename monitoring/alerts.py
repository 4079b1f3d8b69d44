"""Alert sinks: a JSONL log, a webhook (background thread, retries) and Prometheus metrics.

Prompts and answers are left out of the log and the webhook unless `include_text` is set.
"""

from __future__ import annotations

import json
import logging
import queue
import threading
import time
import urllib.request
from pathlib import Path

from prometheus_client import CollectorRegistry, Counter, Histogram

logger = logging.getLogger(__name__)

PROJECTION_BUCKETS = tuple(float(x) for x in range(-40, 41, 2))  # projections of small models span tens


class JsonlAlertLog:
    """Appends one JSON line per alert (thread-safe)."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()

    def send(self, record: dict) -> None:
        line = json.dumps(record) + "\n"
        with self._lock, self.path.open("a") as f:
            f.write(line)


class WebhookSink:
    """POSTs each alert as JSON from a background thread; retries with exponential backoff; never blocks."""

    def __init__(self, url: str, retries: int = 3, backoff_s: float = 0.5, timeout_s: float = 5.0):
        if not url.startswith(("http://", "https://")):
            raise ValueError(f"--webhook {url!r}: expected an http:// or https:// URL")
        self.url, self.retries, self.backoff_s, self.timeout_s = url, retries, backoff_s, timeout_s
        self.sent = 0
        self.failed = 0
        self._queue: queue.Queue[dict | None] = queue.Queue(maxsize=10_000)
        self._thread = threading.Thread(target=self._run, name="persona-webhook", daemon=True)
        self._thread.start()

    def send(self, record: dict) -> None:
        try:
            self._queue.put_nowait(record)
        except queue.Full:
            self.failed += 1
            logger.warning("webhook queue full: alert dropped")

    def _post(self, record: dict) -> None:
        request = urllib.request.Request(
            self.url,
            data=json.dumps(record).encode(),
            headers={"Content-Type": "application/json", "User-Agent": "persona-vaccine-monitor"},
            method="POST",
        )
        with urllib.request.urlopen(request, timeout=self.timeout_s) as response:
            response.read()

    def _run(self) -> None:
        while (record := self._queue.get()) is not None:
            for attempt in range(self.retries + 1):
                try:
                    self._post(record)
                    self.sent += 1
                    break
                except Exception as e:  # network errors and 4xx/5xx alike: retry, then give up
                    if attempt == self.retries:
                        self.failed += 1
                        logger.warning(
                            "webhook %s: alert not delivered after %d tries (%s)", self.url, attempt + 1, e
                        )
                    else:
                        time.sleep(self.backoff_s * 2**attempt)
            self._queue.task_done()

    def flush(self, timeout_s: float = 10.0) -> bool:
        """Wait until the queue is drained (tests, shutdown)."""
        deadline = time.monotonic() + timeout_s
        while self._queue.unfinished_tasks and time.monotonic() < deadline:
            time.sleep(0.02)
        return not self._queue.unfinished_tasks

    def close(self) -> None:
        self.flush(2.0)
        self._queue.put(None)


class Metrics:
    """The Prometheus series the server exports (one registry per server)."""

    def __init__(self, registry: CollectorRegistry | None = None):
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.requests = Counter("persona_requests", "Chat completion requests", ["status"], registry=r)
        self.tokens = Counter("persona_tokens", "Tokens processed", ["kind"], registry=r)
        self.alerts = Counter("persona_alerts", "Persona alerts", ["trait", "kind", "guard"], registry=r)
        self.guard_actions = Counter(
            "persona_guard_actions", "Tokens or generations a guard acted on", ["trait", "guard"], registry=r
        )
        self.projection = Histogram(
            "persona_projection",
            "Projections on the unit persona vector",
            ["trait", "read"],
            buckets=PROJECTION_BUCKETS,
            registry=r,
        )
        self.latency = Histogram(
            "persona_request_latency_seconds",
            "Request latency",
            ["stream"],
            buckets=(0.05, 0.1, 0.25, 0.5, 1, 2, 4, 8, 16, 32, 64),
            registry=r,
        )
        self.first_token = Histogram(
            "persona_time_to_first_token_seconds",
            "Time to first token",
            buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2, 4, 8),
            registry=r,
        )

    def send(self, record: dict) -> None:
        self.alerts.labels(record["trait"], record["kind"], record["guard"]).inc()


class AlertDispatcher:
    """Fans each alert record out to the sinks; strips text unless asked to keep it."""

    def __init__(self, sinks: list, include_text: bool = False):
        self.sinks, self.include_text = sinks, include_text

    def dispatch(self, record: dict) -> None:
        if not self.include_text:
            record = {k: v for k, v in record.items() if k != "text"}
        for sink in self.sinks:
            try:
                sink.send(record)
            except Exception as e:
                logger.warning("alert sink %s failed: %s", type(sink).__name__, e)

    def close(self) -> None:
        for sink in self.sinks:
            if hasattr(sink, "close"):
                sink.close()
