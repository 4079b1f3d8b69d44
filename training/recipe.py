"""Recipes: YAML files parsed into (ModelConfig, DataArguments, PreventativeSFTConfig) with TRL's parser.

`python launch.py train RECIPE --field value` overrides any field. Bad recipes raise RecipeError
naming the file, the field and the fix.
"""

from __future__ import annotations

import dataclasses
import difflib
import re
import types
import typing
from pathlib import Path

import yaml
from trl import ModelConfig, TrlParser

from .config import DataArguments, PreventativeSFTConfig

RECIPE_TYPES = (ModelConfig, DataArguments, PreventativeSFTConfig)
Recipe = tuple[ModelConfig, DataArguments, PreventativeSFTConfig]


class RecipeError(ValueError):
    """A recipe or a command-line override is malformed."""


class _Parser(TrlParser):
    def error(self, message: str) -> typing.NoReturn:  # argparse would print and exit
        raise RecipeError(message)


def recipe_fields(config_types: tuple[type, ...] = RECIPE_TYPES) -> dict[str, object]:
    """Every field a recipe may set, with its resolved type annotation."""
    fields = {}
    for cls in config_types:
        hints = typing.get_type_hints(cls)
        fields.update({f.name: hints.get(f.name, f.type) for f in dataclasses.fields(cls) if f.init})
    return fields


def _scalar_ok(value: object, kind: type) -> bool:
    if kind is bool:
        return isinstance(value, bool)
    if kind is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if kind is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return True
        try:
            float(value)  # YAML reads 1e-4 as a string
            return isinstance(value, str)
        except (TypeError, ValueError):
            return False
    if kind is str:
        return isinstance(value, str)
    return True


def _type_ok(value: object, annotation: object) -> tuple[bool, str]:
    """Check simple annotations (bool/int/float/str, Optional, list of those); others pass."""
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        options = typing.get_args(annotation)
        if value is None and type(None) in options:
            return True, ""
        results = [_type_ok(value, o) for o in options if o is not type(None)]
        return any(ok for ok, _ in results), " or ".join(d for _, d in results)
    if origin is list:
        (item,) = typing.get_args(annotation) or (object,)
        ok = isinstance(value, list) and all(_type_ok(v, item)[0] for v in value)
        return ok, f"a list of {getattr(item, '__name__', item)}"
    if annotation in (bool, int, float, str):
        return _scalar_ok(value, annotation), annotation.__name__
    return True, ""


def check_recipe_mapping(config: dict, source: str, config_types: tuple[type, ...] = RECIPE_TYPES) -> None:
    """Unknown keys and wrongly typed values, with the closest field name as the fix."""
    fields = recipe_fields(config_types)
    for key, value in config.items():
        if key == "env":
            continue
        if key not in fields:
            close = difflib.get_close_matches(key, list(fields), n=1)
            hint = (
                f"did you mean '{close[0]}'?"
                if close
                else "see `python launch.py train --help` for the fields"
            )
            raise RecipeError(f"{source}: unknown field '{key}': {hint}")
        ok, expected = _type_ok(value, fields[key])
        if not ok:
            raise RecipeError(
                f"{source}: field '{key}' is {value!r} ({type(value).__name__}); expected {expected}"
            )


def load_recipe_file(path: str | Path, config_types: tuple[type, ...] = RECIPE_TYPES) -> dict:
    path = Path(path)
    if not path.is_file():
        raise RecipeError(f"recipe not found: {path}")
    try:
        config = yaml.safe_load(path.read_text())
    except yaml.YAMLError as e:
        raise RecipeError(f"{path}: invalid YAML: {e}") from e
    if not isinstance(config, dict):
        raise RecipeError(
            f"{path}: a recipe must be a YAML mapping of field: value, got {type(config).__name__}"
        )
    check_recipe_mapping(config, str(path), config_types)
    return config


def _explain(message: str, overrides: list[str], config_types: tuple[type, ...]) -> str:
    """Name unknown `--field` overrides and the closest valid field."""
    if "not used by the HfArgumentParser" not in message:
        return message
    fields = list(recipe_fields(config_types))
    unknown = [a.lstrip("-") for a in overrides if a.startswith("--") and a.lstrip("-") not in fields]
    close = [difflib.get_close_matches(n, fields, n=1) for n in unknown]
    hints = ", ".join(
        f"'{n}'" + (f" (did you mean '{c[0]}'?)" if c else "") for n, c in zip(unknown, close, strict=True)
    )
    return f"unknown override {hints}" if unknown else message


def _blame(path: str | Path | None, overrides: list[str], message: str) -> str:
    """Where an error comes from: the command line when it names a field overridden there, else the file."""
    given = {a.lstrip("-").split("=", 1)[0].replace("-", "_") for a in overrides if a.startswith("--")}
    named = {
        m.replace("-", "_")
        for m in re.findall(r"--([A-Za-z_][\w-]*)|'(\w+)'|\b(\w+)=", message)
        for m in m
        if m
    }
    hit = sorted(given & named)
    if hit or path is None:
        return "command line" + (f" (--{', --'.join(hit)})" if hit else "")
    return str(path)


def parse_recipe(path: str | Path | None, overrides: list[str] | None = None) -> Recipe:
    """Parse a recipe file plus `--field value` overrides into the three config dataclasses."""
    overrides = list(overrides or [])
    args = overrides
    source = "command line"
    if path is not None:
        load_recipe_file(path)
        args = ["--config", str(path), *overrides]
        source = str(path)
    parser = _Parser(RECIPE_TYPES, allow_abbrev=False)  # no silent prefix matches of field names
    try:
        model_args, data_args, train_args = parser.parse_args_and_config(args)
    except RecipeError as e:
        raise RecipeError(f"{_blame(path, overrides, str(e))}: {e}") from None
    except ValueError as e:  # unknown overrides, or a dataclass __post_init__ check
        message = _explain(str(e), overrides, RECIPE_TYPES)
        raise RecipeError(f"{_blame(path, overrides, message)}: {message}") from None
    if not model_args.model_name_or_path:
        raise RecipeError(
            f"{source}: field 'model_name_or_path' is required (a hub id, a local path, or "
            "'smollm2-135m' for the embedded model)"
        )
    return model_args, data_args, train_args


def parse_config(config_type: type, path: str | Path | None, overrides: list[str] | None = None):
    """One config dataclass from an optional YAML file plus `--field value` overrides."""
    types_ = (config_type,)
    overrides = ["--model_name_or_path" if a == "--model" else a for a in overrides or []]
    args = overrides
    if path is not None:
        load_recipe_file(path, types_)
        args = ["--config", str(path), *overrides]
    try:
        (cfg,) = _Parser(types_, allow_abbrev=False).parse_args_and_config(args)
    except RecipeError as e:
        raise RecipeError(f"{_blame(path, overrides, str(e))}: {e}") from None
    except ValueError as e:
        message = _explain(str(e), overrides, types_)
        raise RecipeError(f"{_blame(path, overrides, message)}: {message}") from None
    return cfg


def print_config_help(config_type: type, prog: str, description: str | None = None) -> None:
    """The `--help` of a command whose fields come from one config dataclass (YAML file + overrides)."""
    parser = _Parser((config_type,), prog=prog, description=description)
    parser.print_help()
    print("\nEvery field can be set in the YAML file or overridden on the command line as --field value.")


def parse_extraction_recipe(path: str | Path, overrides: list[str] | None = None):
    """An extraction recipe (YAML of `ExtractionConfig` fields) plus `--field value` overrides."""
    from steering.extract import ExtractionConfig

    return parse_config(ExtractionConfig, path, overrides)
