"""Recipes: YAML files parsed into (ModelConfig, DataArguments, PreventativeSFTConfig) with TRL's parser.

`python launch.py train RECIPE --field value` overrides any field. Bad recipes raise RecipeError
naming the file, the field and the fix.
"""

from __future__ import annotations

import difflib
import json
import re
import typing
from pathlib import Path

from trl import ModelConfig, TrlParser

from persona_vaccine import cli_args
from persona_vaccine.cli_args import field_name

from .config import DataArguments, PreventativeSFTConfig
from .precheck import (
    SCHEMA_FILE,
    RecipeError,
    check_mapping,
    fields_of,
    remember_fields,
    resolve_recipe,
    schema_key,
)
from .precheck import load_recipe_file as _load_recipe_file

# transformers types the parser's dataclasses as DataClassType, a NewType no plain class matches:
# the config classes are cast to it where a RecipeParser is built
if typing.TYPE_CHECKING:
    from transformers.hf_argparser import DataClassType

__all__ = [
    "RECIPE_TYPES",
    "RecipeError",
    "RecipeParser",
    "parse_config",
    "parse_extraction_recipe",
    "parse_recipe",
    "print_config_help",
    "print_recipe_help",
]

RECIPE_TYPES = (ModelConfig, DataArguments, PreventativeSFTConfig)
Recipe = tuple[ModelConfig, DataArguments, PreventativeSFTConfig]


class RecipeParser(TrlParser):
    """TRL's parser (YAML file + `--field value` overrides) raising RecipeError instead of exiting."""

    def error(self, message: str) -> typing.NoReturn:  # argparse would print and exit
        raise RecipeError(message)


def recipe_fields(config_types: tuple[type, ...] = RECIPE_TYPES) -> dict[str, str]:
    """Every field a recipe may set, with its type descriptor ('int', 'float|None', 'list[str]', ...)."""
    return fields_of(config_types)


def check_recipe_mapping(config: dict, source: str, config_types: tuple[type, ...] = RECIPE_TYPES) -> None:
    """Unknown keys and wrongly typed values, with the closest field name as the fix."""
    check_mapping(config, source, recipe_fields(config_types))


def load_recipe_file(path: str | Path, config_types: tuple[type, ...] = RECIPE_TYPES) -> dict:
    return _load_recipe_file(path, recipe_fields(config_types))


def _unknown(remaining: list[str], config_types: tuple[type, ...]) -> str:
    """The command-line strings no field took, as the unknown `--field` names and the closest valid
    fields; values are never repeated (a mistyped flag may carry a secret)."""
    fields = list(recipe_fields(config_types))
    flags = cli_args.unknown_flags(remaining)
    if not flags:
        return f"{len(remaining)} unexpected value(s) (not shown): each value follows its --field name"
    names = [f[2:] for f in dict.fromkeys(flags)]
    close = [difflib.get_close_matches(field_name(n), fields, n=1) for n in names]
    return "unknown override " + ", ".join(
        f"'{n}'" + (f" (did you mean '{c[0]}'?)" if c else "") for n, c in zip(names, close, strict=True)
    )


def _blame(path: str | Path | None, overrides: list[str], message: str) -> str:
    """Where an error comes from: the command line when it names a field overridden there, else the file."""
    given = {a.lstrip("-").split("=", 1)[0].replace("-", "_") for a in overrides if a.startswith("--")}
    named = {
        m.replace("-", "_")
        for m in re.findall(r"--([A-Za-z_][\w-]*)|'([\w-]+)'|\b(\w+)=", message)
        for m in m
        if m
    }
    hit = sorted(given & named)
    if hit or path is None:
        return "command line" + (f" (--{', --'.join(hit)})" if hit else "")
    return str(path)


def _parse(config_types: tuple[type, ...], path: str | Path | None, overrides: list[str]) -> tuple:
    """The config dataclasses from an optional YAML file plus `--field value` overrides (one parser for all)."""
    args = overrides
    if path is not None:
        path = resolve_recipe(path)
        load_recipe_file(path, config_types)
        args = ["--config", str(path), *overrides]
    from .precheck import field_name, fields_of

    fields = fields_of(config_types)  # unknown flags first: a config's own checks would hide them

    def known(flag: str) -> bool:
        name = field_name(flag)
        return name in ("config", "model") or name in fields or name.removeprefix("no_") in fields

    unknown = [a for a in overrides if a.startswith("--") and not known(a)]
    if unknown:
        message = _unknown(unknown, config_types)
        raise RecipeError(f"{_blame(path, overrides, message)}: {message}")
    # allow_abbrev=False: no silent prefix matches of field names
    parser = RecipeParser(typing.cast("tuple[DataClassType, ...]", config_types), allow_abbrev=False)
    try:
        *configs, remaining = parser.parse_args_and_config(args, return_remaining_strings=True)
    except RecipeError as e:
        raise RecipeError(f"{_blame(path, overrides, str(e))}: {e}") from None
    except ValueError as e:  # a dataclass __post_init__ check
        raise RecipeError(f"{_blame(path, overrides, str(e))}: {e}") from None
    if remaining:  # TRL's own error would list them with their values
        message = _unknown(remaining, config_types)
        raise RecipeError(f"{_blame(path, overrides, message)}: {message}")
    return tuple(configs)


def parse_recipe(path: str | Path | None, overrides: list[str] | None = None) -> Recipe:
    """Parse a recipe file plus `--field value` overrides into the three config dataclasses."""
    model_args, data_args, train_args = _parse(RECIPE_TYPES, path, list(overrides or []))
    if not model_args.model_name_or_path:
        source = "command line" if path is None else str(path)
        raise RecipeError(
            f"{source}: field 'model_name_or_path' is required (a hub id, a local path, or "
            "'smollm2-135m' for the embedded model)"
        )
    modules = model_args.lora_target_modules
    if isinstance(modules, str) and modules != "all-linear" and re.fullmatch(r"\w+", modules):
        # TRL unwraps a one-item list to a string, which PEFT reads as a regex on the full module name
        model_args.lora_target_modules = [modules]
    remember_fields("train", recipe_fields(RECIPE_TYPES))
    return model_args, data_args, train_args


def parse_config(config_type: type, path: str | Path | None, overrides: list[str] | None = None):
    """One config dataclass from an optional YAML file plus `--field value` overrides (`--model` aliases
    `--model_name_or_path`)."""
    overrides = ["--model_name_or_path" if a == "--model" else a for a in overrides or []]
    (cfg,) = _parse((config_type,), path, overrides)
    kind = {"ScreenConfig": "screen", "ExtractionConfig": "extract"}.get(config_type.__name__)
    if kind:
        remember_fields(kind, fields_of((config_type,)))
    return cfg


def print_config_help(config_type: type, prog: str, description: str | None = None) -> None:
    """The `--help` of a command whose fields come from one config dataclass (YAML file + overrides)."""
    parser = RecipeParser(
        typing.cast("tuple[DataClassType]", (config_type,)), prog=prog, description=description
    )
    parser.print_help()
    print(
        "\nEvery field can be set in the YAML file or overridden on the command line as --field_name value "
        "(or --field-name value)."
    )


def print_recipe_help() -> None:
    """The `--help` of the train command: every field of the three recipe dataclasses."""
    print(
        f"usage: {cli_args.prog('train')} RECIPE.yaml [--field value ...]\n\nAny field below can be set in the "
        "recipe or overridden on the command line as --field_name value or --field-name value.\n"
    )
    RecipeParser(
        typing.cast("tuple[DataClassType, ...]", RECIPE_TYPES), prog=cli_args.prog("train")
    ).print_help()


def parse_extraction_recipe(path: str | Path, overrides: list[str] | None = None):
    """An extraction recipe (YAML of `ExtractionConfig` fields) plus `--field value` overrides."""
    from persona_vaccine.steering.extract import ExtractionConfig

    return parse_config(ExtractionConfig, path, overrides)


def write_field_schema(path: str | Path = SCHEMA_FILE) -> Path:
    """Write recipe_fields.json, the field schema precheck uses before the heavy imports."""
    from persona_vaccine.data.screening import ScreenConfig
    from persona_vaccine.steering.extract import ExtractionConfig

    schema = {
        kind: {"key": schema_key(kind), "fields": fields_of(types_)}
        for kind, types_ in (
            ("train", RECIPE_TYPES),
            ("screen", (ScreenConfig,)),
            ("extract", (ExtractionConfig,)),
        )
    }
    Path(path).write_text(json.dumps(schema, indent=1, sort_keys=True) + "\n")
    return Path(path)


# python -m persona_vaccine.training.recipe: refresh recipe_fields.json after editing a config
if __name__ == "__main__":
    print(f"wrote {write_field_schema()}")
