"""Real-time persona monitoring at inference: read the residual stream on persona vectors while a model
answers, alert on crossings, optionally guard (cap, steer, stop), and serve it behind an OpenAI API."""

from .guards import GUARDS
from .monitor import Alert, Monitor, TraitReading, Watch, monitor

__all__ = ["GUARDS", "Alert", "Monitor", "TraitReading", "Watch", "monitor"]
