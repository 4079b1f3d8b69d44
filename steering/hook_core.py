"""The one place a Hugging Face model's residual stream is hooked: `attach(model, {layer: [op, ...]})`.

An op is `op(layer, hidden) -> hidden | None`: it gets the residual stream after decoder block `layer`
(1-based; the block's hidden-state output) and returns a changed stream, or None to leave it. The ops
of a layer run in order, each on the previous one's result; the block's output keeps its container
(tensor, tuple, ModelOutput). `pre_forward(module, args, kwargs)` sees every call of the model itself
(how the steering hooks and the monitor tell prefill from decode). Everything is removed when the block
ends, however it ends. The arithmetic of the ops lives in `residual_ops`, shared with the vLLM worker.

Users: the steering hooks (`hooks.Steerer`), the monitor (`monitoring.monitor.Monitor`), the activation
reader of extraction and scoring (`activations`), the trainer's projection penalty and the export's bake
probe. Steering and monitoring follow positions (prompt or answer, prefill or decode) with the one
`forward_call.PositionTracker`.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

import torch
from torch import nn

from persona_vaccine.models.layers import block_hidden, get_decoder_layers, unwrap_model, with_block_hidden

Op = Callable[[int, torch.Tensor], "torch.Tensor | None"]
PreForward = Callable[[nn.Module, tuple, dict], None]


def _block_hook(layer: int, ops: Sequence[Op]) -> Callable[[nn.Module, tuple, Any], Any]:
    def hook(module: nn.Module, args: tuple, output: Any) -> Any:
        hidden = block_hidden(output)
        changed = hidden
        for op in ops:
            result = op(layer, changed)
            if result is not None:
                changed = result
        return None if changed is hidden else with_block_hidden(output, changed)

    return hook


@contextlib.contextmanager
def attach(
    model: nn.Module,
    ops: Mapping[int, Sequence[Op]],
    pre_forward: PreForward | None = None,
    layers_path: str | None = None,
    first: bool = False,
) -> Iterator[None]:
    """Run `ops` on the given layers' outputs inside the block (forward and backward: gradient
    checkpointing re-runs blocks there). `first=True` runs them before hooks attached earlier."""
    blocks = get_decoder_layers(model, layers_path)
    handles = []
    try:
        if pre_forward is not None:
            handles.append(unwrap_model(model).register_forward_pre_hook(pre_forward, with_kwargs=True))
        for layer in sorted(ops):
            hook = _block_hook(layer, list(ops[layer]))
            handles.append(blocks[layer - 1].register_forward_hook(hook, prepend=first))
        yield
    finally:
        for handle in handles:
            handle.remove()
