"""The persona vectors of a training run, each resolved once from the recipe into one `VectorSteering`:
the vector, the layer its drift is measured at, and its training-time hook."""

from __future__ import annotations

from dataclasses import dataclass

from torch import nn

from persona_vaccine.models.layers import check_layer, get_decoder_layers
from persona_vaccine.steering.hooks import SteeringSpec
from persona_vaccine.steering.vector import PersonaVector, VectorMismatch, vector_for_model

from .config import PreventativeSFTConfig
from .summary import SteeringRecord


@dataclass
class VectorSteering:
    """One entry of `persona_vectors`: its file, its vector, the layer its drift (and the projection
    penalty) is measured at, and its hook in training (`spec`: the steered vector, layers, coefficient,
    mode, positions and coefficient unit; None when the vector is only measured)."""

    path: str
    vector: PersonaVector
    layer: int
    spec: SteeringSpec | None = None

    @property
    def trait(self) -> str:
        return self.vector.trait

    @property
    def coef(self) -> float:
        """The coefficient now (steering_auto changes it during training); 0 when not steered."""
        return self.spec.coef if self.spec is not None else 0.0

    def records(self) -> list[SteeringRecord]:
        """summary.json's `steering` entries of this vector: one per steered layer."""
        spec = self.spec
        if spec is None:
            return []
        return [
            SteeringRecord(
                trait=self.trait,
                layer=layer,
                coef=spec.coef,
                mode=spec.mode,
                positions=spec.positions,
                coef_unit=spec.coef_unit,
            )
            for layer in spec.layers
        ]


def steering_from_config(
    args: PreventativeSFTConfig, model: nn.Module, model_id: str | None = None
) -> list[VectorSteering]:
    """Load the run's vector files, check them against the model and the recipe, and resolve each one's
    layer and hook (`steering_layers`, `steering_coefs`, `steering_mode`, ...)."""
    vectors = []
    for i, path in enumerate(args.persona_vectors):
        vector = vector_for_model(path, model, model_id)
        if i < len(args.steering_traits) and args.steering_traits[i] != vector.trait:
            raise VectorMismatch(
                f"persona_vectors[{i}] ({path}) holds trait '{vector.trait}' but steering_traits[{i}] is "
                f"'{args.steering_traits[i]}': fix the order or the file"
            )
        vectors.append(vector)
    n_layers = len(get_decoder_layers(model))
    for i, layer in enumerate(args.steering_layers[: len(vectors)]):
        try:
            check_layer(layer, n_layers, where=f"steering_layers[{i}]")
        except ValueError as e:
            raise VectorMismatch(str(e)) from None
    out = [
        VectorSteering(
            str(path), v, args.steering_layers[i] if i < len(args.steering_layers) else v.default_layer()
        )
        for i, (path, v) in enumerate(zip(args.persona_vectors, vectors, strict=True))
    ]
    for i, steering in enumerate(out):
        if args.coef_for(i) != 0.0 or args.steering_auto:
            all_layers = args.steering_all_layers
            steering.spec = SteeringSpec(
                steering.vector.incremental() if all_layers else steering.vector,
                list(range(1, n_layers + 1)) if all_layers else [steering.layer],
                args.coef_for(i),
                args.steering_mode,
                args.steering_positions,
                args.steering_coef_unit,
            )
    return out


def steering_records(steering: list[VectorSteering]) -> list[SteeringRecord]:
    """summary.json's `steering`: every steered (vector, layer) of the run."""
    return [record for s in steering for record in s.records()]
