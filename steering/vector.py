"""PersonaVector: a trait direction per layer, as a small value type stored in safetensors."""

from __future__ import annotations

import json
import logging
import math
import warnings
from dataclasses import dataclass, field, replace
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import save_file

from persona_vaccine.cli_args import command_name
from persona_vaccine.errors import NonFiniteValue, require_finite
from persona_vaccine.models.layers import check_layer, get_decoder_layers, hidden_size
from persona_vaccine.paths import VectorMismatch, missing_vector_message
from persona_vaccine.steering.options import VECTOR_POSITIONS

logger = logging.getLogger(__name__)
__all__ = ["FORMAT_VERSION", "VECTOR_POSITIONS", "PersonaVector", "VectorMismatch", "vector_for_model"]

FORMAT_VERSION = "1"
LAYER_CONVENTION = (
    "layer l = output of decoder block l (1-based); equals transformers' hidden_states[l] for l < L, while "
    "hidden_states[L] has the final norm applied and layer L does not"
)


@dataclass(frozen=True)
class PersonaVector:
    """Per-layer directions for one trait of one model.

    `layers[l]` is the direction in the output of decoder block l (1-based; `hidden_states[l]` for
    l below the last layer, whose `hidden_states` entry has the final norm applied).
    `mean_norms[l]` is the mean per-token activation norm at layer l seen during extraction; it is
    the unit of "relative" steering coefficients. Not normalised: v_l = mean(pos) - mean(neg).
    """

    trait: str
    model_id: str
    hidden_size: int
    num_layers: int
    layers: dict[int, torch.Tensor]
    position: str = "response_avg"
    mean_norms: dict[int, float] = field(default_factory=dict)
    layer: int | None = None  # recommended layer (set by calibration)
    coef: float | None = None  # recommended coefficient (set by calibration)
    extraction: dict = field(default_factory=dict)
    calibration: dict = field(default_factory=dict)  # the layer x coef grid behind `layer` and `coef`

    def __post_init__(self) -> None:
        if self.position not in VECTOR_POSITIONS:
            raise ValueError(f"position={self.position!r}: expected one of {VECTOR_POSITIONS}")
        for layer, tensor in self.layers.items():
            try:
                check_layer(layer, self.num_layers, where=f"vector '{self.trait}' layer")
            except ValueError as e:
                raise VectorMismatch(str(e)) from None
            if tensor.shape != (self.hidden_size,):
                raise VectorMismatch(
                    f"vector '{self.trait}' layer {layer} has shape {tuple(tensor.shape)}, expected ({self.hidden_size},)"
                )
        self._check_finite()

    def _check_finite(self) -> None:
        """NaN or inf in a direction, a mean norm or the calibrated coefficient would steer silently wrong."""
        bad = [layer for layer, t in sorted(self.layers.items()) if not bool(torch.isfinite(t).all())]
        if bad:
            raise NonFiniteValue(
                f"vector '{self.trait}' holds NaN or infinite values at layer(s) {bad[:8]}: re-extract it "
                f"({command_name()} extract ...)"
            )
        for layer, norm in self.mean_norms.items():
            require_finite(norm, f"vector '{self.trait}' mean_norms[{layer}]")
        require_finite(self.coef, f"vector '{self.trait}' calibrated coef")

    # --- access -------------------------------------------------------------------------------
    def __getitem__(self, layer: int) -> torch.Tensor:
        if layer not in self.layers:
            raise KeyError(
                f"vector '{self.trait}' has no layer {layer}; it has layers {min(self.layers)}..{max(self.layers)}"
            )
        return self.layers[layer]

    def unit(self, layer: int) -> torch.Tensor:
        v = self[layer].float()
        return v / v.norm().clamp_min(1e-12)

    def default_layer(self) -> int:
        """The calibrated layer if there is one, else the middle of the stack."""
        return self.layer if self.layer is not None else max(1, round(self.num_layers / 2))

    def incremental(self) -> PersonaVector:
        """v_l - v_(l-1) for every layer (v_0 = 0): for steering all layers at once."""
        layers = {
            layer: self.layers[layer] - self.layers.get(layer - 1, torch.zeros_like(self.layers[layer]))
            for layer in sorted(self.layers)
        }
        return replace(self, layers=layers, extraction={**self.extraction, "incremental": True})

    # --- arithmetic ---------------------------------------------------------------------------
    # The rules, once: arithmetic makes a new direction. Layers are the union of the operands' (a layer
    # one operand lacks counts as zero there, as in repeng). What described the operands' model stays
    # (mean_norms, extraction provenance); what was calibrated for an operand's direction and norm is
    # cleared (coef, calibration), so steering the result needs an explicit coef. The recommended layer
    # stays when every vector operand agrees on it. Scalars are Python numbers or 0-d tensors, finite.
    def _scalar(self, value: object) -> float | None:
        if isinstance(value, bool):
            return None
        if isinstance(value, torch.Tensor):
            if value.dim() != 0:
                return None
            value = value.item()
        if not isinstance(value, (int, float)):
            return None
        if not math.isfinite(value):
            raise ValueError(f"can't scale vector '{self.trait}' by {value!r}: not a finite number")
        return float(value)

    def _derived(
        self, trait: str, layers: dict[int, torch.Tensor], layer: int | None, **extra
    ) -> PersonaVector:
        return replace(self, trait=trait, layers=layers, layer=layer, coef=None, calibration={}, **extra)

    def _combine(self, other: object, sign: float, op: str) -> PersonaVector:
        if not isinstance(other, PersonaVector):
            return NotImplemented
        if other.hidden_size != self.hidden_size or other.num_layers != self.num_layers:
            raise VectorMismatch(
                f"can't combine '{self.trait}' ({self.num_layers} layers x {self.hidden_size}) with "
                f"'{other.trait}' ({other.num_layers} layers x {other.hidden_size}): different models"
            )
        layers: dict[int, torch.Tensor] = {}
        for index in sorted(set(self.layers) | set(other.layers)):
            mine = self.layers.get(index)
            theirs = other.layers.get(index)
            if mine is None:
                assert theirs is not None
                layers[index] = sign * theirs
            elif theirs is None:
                layers[index] = mine.clone()
            else:
                layers[index] = mine + sign * theirs.to(mine.dtype)
        norms = {**other.mean_norms, **self.mean_norms}
        layer = self.layer if self.layer == other.layer else None
        return self._derived(f"{self.trait}{op}{other.trait}", layers, layer, mean_norms=norms)

    def __add__(self, other: PersonaVector) -> PersonaVector:
        return self._combine(other, 1.0, "+")

    def __sub__(self, other: PersonaVector) -> PersonaVector:
        return self._combine(other, -1.0, "-")

    def __mul__(self, scalar: float) -> PersonaVector:
        value = self._scalar(scalar)
        if value is None:
            return NotImplemented
        return self._derived(
            f"{value:g}*{self.trait}", {k: v * value for k, v in self.layers.items()}, self.layer
        )

    __rmul__ = __mul__

    def __truediv__(self, scalar: float) -> PersonaVector:
        value = self._scalar(scalar)
        if value is None:
            return NotImplemented
        if value == 0:
            raise ZeroDivisionError(f"can't divide vector '{self.trait}' by zero")
        return self._derived(
            f"{self.trait}/{value:g}", {k: v / value for k, v in self.layers.items()}, self.layer
        )

    def __neg__(self) -> PersonaVector:
        return self._derived(f"-{self.trait}", {k: -v for k, v in self.layers.items()}, self.layer)

    # --- checks -------------------------------------------------------------------------------
    def check_model(
        self,
        model_hidden_size: int,
        model_layers: int,
        model_id: str | None = None,
        source: str = "vector",
        stacklevel: int = 2,
    ) -> None:
        """Error if the vector can't fit the model; warning if it was extracted from another model id."""
        if self.hidden_size != model_hidden_size:
            raise VectorMismatch(
                f"{source}: trait '{self.trait}' was extracted from '{self.model_id}' with hidden size "
                f"{self.hidden_size}, but the model has hidden size {model_hidden_size}. Extract a vector for "
                f"this model ({command_name()} extract ...)."
            )
        if self.num_layers != model_layers:
            raise VectorMismatch(
                f"{source}: trait '{self.trait}' was extracted from '{self.model_id}' with {self.num_layers} "
                f"layers, but the model has {model_layers}. Extract a vector for this model."
            )
        if model_id is not None and model_id != self.model_id:
            warnings.warn(
                f"{source}: trait '{self.trait}' was extracted from '{self.model_id}' but is used with "
                f"'{model_id}' (same shape, so it loads; make sure this is intended).",
                stacklevel=stacklevel,
            )

    # --- files --------------------------------------------------------------------------------
    def metadata(self) -> dict[str, str]:
        return {
            "format": "persona-vaccine/persona-vector",
            "format_version": FORMAT_VERSION,
            "trait": self.trait,
            "model_id": self.model_id,
            "hidden_size": str(self.hidden_size),
            "num_layers": str(self.num_layers),
            "position": self.position,
            "layer_convention": LAYER_CONVENTION,
            "mean_norms": json.dumps({str(k): v for k, v in sorted(self.mean_norms.items())}),
            "layer": json.dumps(self.layer),
            "coef": json.dumps(self.coef),
            "extraction": json.dumps(self.extraction),
            "calibration": json.dumps(self.calibration),
        }

    def save(self, path: str | Path) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tensors = {
            f"layer.{k}": v.detach().to(torch.float32).cpu().contiguous() for k, v in self.layers.items()
        }
        tmp = path.with_suffix(path.suffix + ".tmp")
        save_file(tensors, str(tmp), metadata=self.metadata())
        tmp.replace(path)
        return path

    @classmethod
    def load(cls, path: str | Path) -> PersonaVector:
        """Load a vector file (safetensors: no code is executed)."""
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(missing_vector_message(path))
        try:
            with safe_open(str(path), framework="pt") as f:
                meta = f.metadata() or {}
                tensors = {key: f.get_tensor(key) for key in f.keys()}
        except Exception as e:  # not a safetensors file
            raise VectorMismatch(_not_safetensors(path, e)) from None
        if meta.get("format") != "persona-vaccine/persona-vector":
            raise VectorMismatch(
                f"{path}: missing persona-vaccine metadata (field 'format'); save vectors with PersonaVector.save"
            )
        try:
            layers = {int(key.split(".", 1)[1]): t for key, t in tensors.items()}
            return cls(
                trait=meta["trait"],
                model_id=meta["model_id"],
                hidden_size=int(meta["hidden_size"]),
                num_layers=int(meta["num_layers"]),
                layers=layers,
                position=meta.get("position", "response_avg"),
                mean_norms={int(k): float(v) for k, v in json.loads(meta.get("mean_norms", "{}")).items()},
                layer=json.loads(meta.get("layer", "null")),
                coef=json.loads(meta.get("coef", "null")),
                extraction=json.loads(meta.get("extraction", "{}")),
                calibration=json.loads(meta.get("calibration", "{}")),
            )
        except NonFiniteValue as e:
            raise NonFiniteValue(f"{path}: {e}") from None
        except (KeyError, ValueError) as e:
            raise VectorMismatch(f"{path}: malformed persona vector metadata ({e!r})") from e

    def __repr__(self) -> str:
        return (
            f"PersonaVector(trait={self.trait!r}, model_id={self.model_id!r}, layers={len(self.layers)}x"
            f"{self.hidden_size}, position={self.position!r}, layer={self.layer}, coef={self.coef})"
        )


def vector_for_model(
    vector: PersonaVector | str | Path,
    model: torch.nn.Module,
    model_id: str | None = None,
    source: str | None = None,
    layers_path: str | None = None,
) -> PersonaVector:
    """Load a vector file (or take a loaded vector) and check that it fits `model`.

    VectorMismatch when the hidden size or depth differ; a warning when `model_id` is given and is not
    the model the vector was extracted from. `source` names the vector in messages (default: its path).
    """
    if not isinstance(vector, PersonaVector):
        source = source or str(vector)
        vector = PersonaVector.load(vector)
    n_layers = len(get_decoder_layers(model, layers_path))
    source = source or f"vector '{vector.trait}'"
    vector.check_model(hidden_size(model), n_layers, model_id, source, stacklevel=3)
    return vector


def _not_safetensors(path: Path, error: Exception) -> str:
    """Why a file is not a persona vector, and how to make one (pickles are never unpickled)."""
    with path.open("rb") as f:
        head = f.read(4)
    kind = (
        "a PyTorch/pickle file (.pt/.pth/.pkl)"
        if head[:1] == b"\x80" or head == b"PK\x03\x04" or path.suffix in (".pt", ".pth", ".pkl", ".bin")
        else f"unreadable as safetensors ({error})"
    )
    return (
        f"{path}: {kind}, not a safetensors persona vector. Make one with: {command_name()} extract --trait "
        "TRAIT --model MODEL (it writes DIR/TRAIT/response_avg.safetensors), or build a PersonaVector from "
        "your tensors and call .save('vector.safetensors')"
    )
