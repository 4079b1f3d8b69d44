"""Check recipes, overrides and input paths before torch, transformers and TRL are imported.

A typo in a recipe, a missing vector file or a NaN coefficient is reported in about a second; the full
parse (training/recipe.py) still runs afterwards and catches the rest. Field names and types come from
a schema of the config dataclasses: `recipe_fields.json` (committed, for the pinned library versions),
else a copy the last full parse left in the cache folder; without one, only the paths are checked.
"""

from __future__ import annotations

import dataclasses
import difflib
import hashlib
import json
import os
import types
import typing
from importlib import metadata
from pathlib import Path

import yaml

from persona_vaccine.cli_args import command_name, field_name
from persona_vaccine.errors import UserError, require_finite
from persona_vaccine.paths import cache_dir, check_model_id, model_num_layers, vector_metadata

SCHEMA_FILE = Path(__file__).with_name("recipe_fields.json")
ROOT = Path(__file__).resolve().parents[1]
SOURCES = {  # the project file defining each command's config dataclass
    "train": "training/config.py",
    "screen": "data/screening_config.py",
    "extract": "steering/extract_config.py",
}
DATA_SUFFIXES = (".jsonl", ".json", ".csv", ".parquet")
FLOAT_FIELDS = (  # numbers that must be finite, in any command's config
    "steering_coefs", "steering_warmup_ratio", "projection_penalty", "judge_min_mass",
    "inference_steering_coef", "eval_fraction", "screen_drop_above", "screen_drop_top_pct",
    "learning_rate", "temperature", "top_p", "trait_threshold", "coherence_threshold",
)  # fmt: skip


class RecipeError(UserError, ValueError):
    """A recipe or a command-line override is malformed."""


# ---------------------------------------------------------------- field types as short descriptors
def describe(annotation: object) -> str:
    """A type annotation as a descriptor: 'int', 'float|None', 'list[str]', or 'any' (not checked)."""
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        return "|".join(describe(a) for a in typing.get_args(annotation))
    if origin is list:
        (item,) = typing.get_args(annotation) or (object,)
        return f"list[{describe(item)}]"
    if annotation is type(None):
        return "None"
    return annotation.__name__ if annotation in (bool, int, float, str) else "any"


def _split(descriptor: str) -> list[str]:
    parts, depth, current = [], 0, ""
    for ch in descriptor:
        depth += {"[": 1, "]": -1}.get(ch, 0)
        if ch == "|" and depth == 0:
            parts.append(current)
            current = ""
        else:
            current += ch
    return [*parts, current]


def _scalar_ok(value: object, kind: str) -> bool:
    if kind == "bool":
        return isinstance(value, bool)
    if kind == "int":
        return isinstance(value, int) and not isinstance(value, bool)
    if kind == "float":
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return True
        if not isinstance(value, str):
            return False
        try:
            float(value)  # YAML reads 1e-4 as a string
            return True
        except (TypeError, ValueError):
            return False
    if kind == "str":
        return isinstance(value, str)
    return True


def value_fits(value: object, descriptor: str) -> tuple[bool, str]:
    """Whether a recipe value fits a descriptor, and what was expected."""
    options = _split(descriptor)
    if len(options) > 1:
        if value is None and "None" in options:
            return True, ""
        results = [value_fits(value, o) for o in options if o != "None"]
        return any(ok for ok, _ in results), " or ".join(d for _, d in results)
    if descriptor.startswith("list["):
        item = descriptor[5:-1]
        ok = isinstance(value, list) and all(value_fits(v, item)[0] for v in value)
        return ok, f"a list of {item}"
    if descriptor == "None":
        return value is None, "null"
    return _scalar_ok(value, descriptor), descriptor


def check_mapping(config: dict, source: str, fields: dict[str, str]) -> None:
    """Unknown keys and wrongly typed values, with the closest field name as the fix."""
    for key, value in config.items():
        if key == "env":
            continue
        if key not in fields:
            close = difflib.get_close_matches(key, list(fields), n=1)
            hint = (
                f"did you mean '{close[0]}'?"
                if close
                else f"see `{command_name()} train --help` for the fields"
            )
            raise RecipeError(f"{source}: unknown field '{key}': {hint}")
        ok, expected = value_fits(value, fields[key])
        if not ok:
            raise RecipeError(
                f"{source}: field '{key}' is {value!r} ({type(value).__name__}); expected {expected}"
            )


# ---------------------------------------------------------------- the schema of field descriptors
def schema_key(kind: str) -> dict[str, str]:
    """What the fields of a command depend on: library versions and the project file defining them."""
    versions = {}
    for package in ("transformers", "trl"):
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = "none"
    source = (ROOT / SOURCES[kind]).read_bytes()
    return {**versions, "source": hashlib.sha256(source).hexdigest()[:16]}


def _cached_schema(kind: str) -> Path:
    return cache_dir() / "recipe_fields" / f"{kind}-{schema_key(kind)['source']}.json"


def known_fields(kind: str) -> dict[str, str] | None:
    """The fields of a command's config, or None when no schema matches the installed versions."""
    key = schema_key(kind)
    for path in (SCHEMA_FILE, _cached_schema(kind)):
        try:
            entry = json.loads(path.read_text()).get(kind, {})
        except (OSError, ValueError):
            continue
        if entry.get("key") == key:
            return entry["fields"]
    return None


def fields_of(config_types: tuple[type, ...]) -> dict[str, str]:
    """Descriptors of every init field of the dataclasses (this imports them: heavy)."""
    fields = {}
    for cls in config_types:
        hints = typing.get_type_hints(cls)
        fields.update(
            {f.name: describe(hints.get(f.name, f.type)) for f in dataclasses.fields(cls) if f.init}
        )
    return fields


def remember_fields(kind: str, fields: dict[str, str]) -> None:
    """Leave the schema in the cache folder, so the next bad recipe is caught before the heavy imports."""
    path = _cached_schema(kind)
    if path.is_file():
        return
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".tmp{os.getpid()}")
        tmp.write_text(json.dumps({kind: {"key": schema_key(kind), "fields": fields}}))
        tmp.replace(path)
    except OSError:
        pass  # a read-only cache only costs speed


# ---------------------------------------------------------------- recipe files and overrides
def resolve_recipe(path: str | Path) -> Path:
    """The recipe file as given, else the shipped recipe of that name (`recipes/...` works from any folder)."""
    path = Path(path)
    if path.is_file() or path.is_absolute():
        return path
    from persona_vaccine import recipes_dir

    parts = path.parts[1:] if path.parts[:1] == ("recipes",) else path.parts
    shipped = recipes_dir().joinpath(*parts)
    return shipped if shipped.is_file() else path


def load_recipe_file(path: str | Path, fields: dict[str, str] | None) -> dict:
    path = resolve_recipe(path)
    if not path.is_file():
        from persona_vaccine import recipes_dir

        raise RecipeError(
            f"recipe not found: {path} (give the path of a YAML file; the shipped recipes are in {recipes_dir()})"
        )
    try:
        config = yaml.safe_load(path.read_text())
    except yaml.YAMLError as e:
        raise RecipeError(f"{path}: invalid YAML: {' '.join(str(e).split())}") from None
    except UnicodeDecodeError:
        raise RecipeError(f"{path}: not a text file (a recipe is a YAML mapping of field: value)") from None
    if not isinstance(config, dict):
        raise RecipeError(
            f"{path}: a recipe must be a YAML mapping of field: value, got {type(config).__name__}"
        )
    if fields is not None:
        check_mapping(config, str(path), fields)
    return config


def parse_overrides(argv: list[str], fields: dict[str, str] | None) -> dict[str, object]:
    """`--field value [value ...]` pairs as strings (lists for several values), keyed by the snake_case
    field name (`--field-name` works too); unknown names raise, naming the flag but never its value."""
    out: dict[str, object] = {}
    name = None
    for arg in argv:
        if arg.startswith("--"):
            name = field_name(arg)
            name = "model_name_or_path" if name == "model" else name
            known = fields is None or name in fields or name.removeprefix("no_") in fields
            if not known:
                close = difflib.get_close_matches(name, list(fields or {}), n=1)
                hint = f" (did you mean '{close[0]}'?)" if close else ""
                raise RecipeError(f"command line: unknown override '{arg[2:].split('=', 1)[0]}'{hint}")
            out[name] = arg.split("=", 1)[1] if "=" in arg else []
        elif name is not None and isinstance(values := out[name], list):
            values.append(arg)
    return {k: (v[0] if isinstance(v, list) and len(v) == 1 else v) for k, v in out.items()}


# ---------------------------------------------------------------- values and paths
def _numbers(value: object) -> list[float]:
    # any YAML value: float() decides which are numbers
    values: list[typing.Any] = value if isinstance(value, list) else [value]
    out = []
    for v in values:
        try:
            out.append(float(v))
        except (TypeError, ValueError):
            pass  # the full parse reports the type
    return out


def _writable(output_dir: str, source: str) -> None:
    folder = Path(output_dir).expanduser().absolute()
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    if folder.exists() and not os.access(folder, os.W_OK):
        raise UserError(f"{source}: output_dir {output_dir} can't be written ({folder} is not writable)")


def _complete(checkpoint: Path) -> bool:
    """Trainer writes trainer_state.json last: without a readable one, a checkpoint was cut short."""
    try:
        return isinstance(json.loads((checkpoint / "trainer_state.json").read_text()), dict)
    except (OSError, ValueError):
        return False


def last_checkpoint(output_dir: str | Path) -> Path | None:
    """The complete checkpoint-N folder with the highest N (a crash may leave a later, partial one), or None."""
    found = [
        p
        for p in Path(output_dir).glob("checkpoint-*")
        if p.name[11:].isdigit() and p.is_dir() and _complete(p)
    ]
    return max(found, key=lambda p: int(p.name[11:])) if found else None


def resolve_resume(checkpoint: object, output_dir: str) -> str | None:
    """The checkpoint folder a --resume_from_checkpoint value names (true: the last one), or a UserError."""
    if checkpoint in (None, False, "", "false", "False"):
        return None
    if checkpoint in (True, "true", "True"):
        found = last_checkpoint(output_dir)
        if found is None:
            raise UserError(
                f"resume_from_checkpoint=true but {output_dir} holds no checkpoint-N folder: drop the flag to "
                "start afresh, or set save_steps so that checkpoints are written"
            )
        return str(found)
    if not _complete(Path(str(checkpoint))):
        raise UserError(
            f"resume_from_checkpoint: {checkpoint} is not a checkpoint folder (no trainer_state.json); give "
            f"one of {output_dir}/checkpoint-N, or true for the last one"
        )
    return str(checkpoint)


def check_values(config: dict, source: str) -> None:
    """Finite numbers, existing inputs, vector files of the right trait, layers in range, a writable output."""
    for name in FLOAT_FIELDS:
        if name in config:
            for i, number in enumerate(_numbers(config[name])):
                require_finite(
                    number, f"{source}: {name}" + (f"[{i}]" if isinstance(config[name], list) else "")
                )
    for name in ("calibration_coefs",):  # comma-separated numbers
        if isinstance(config.get(name), str):
            for number in _numbers([x for x in config[name].split(",") if x.strip()]):
                require_finite(number, f"{source}: {name}")
    model = config.get("model_name_or_path")
    if isinstance(model, str):
        check_model_id(model)
    n_layers = model_num_layers(model) if isinstance(model, str) else None
    traits = config.get("steering_traits") or []
    for name in ("persona_vectors", "screen_vectors", "vectors"):
        paths = config.get(name) or []
        for i, path in enumerate(paths if isinstance(paths, list) else [paths]):
            trait = (
                traits[i]
                if name == "persona_vectors" and isinstance(traits, list) and i < len(traits)
                else None
            )
            meta = vector_metadata(str(path), trait, model if isinstance(model, str) else None)
            if name == "persona_vectors" and isinstance(traits, list) and i < len(traits):
                if traits[i] != meta.get("trait"):
                    raise UserError(
                        f"{source}: persona_vectors[{i}] ({path}) holds trait '{meta.get('trait')}' but "
                        f"steering_traits[{i}] is '{traits[i]}': fix the order or the file"
                    )
            n_layers = n_layers or int(meta.get("num_layers", 0)) or None
    for name in ("steering_layers", "layers"):
        layers = config.get(name) or []
        for i, layer in enumerate(layers if isinstance(layers, list) else [layers]):
            try:
                layer = int(layer)
            except (TypeError, ValueError):
                continue
            if n_layers and not 1 <= layer <= n_layers:
                raise UserError(
                    f"{source}: {name}[{i}]={layer} is out of range: the model has {n_layers} decoder blocks, "
                    f"so layers run from 1 to {n_layers}"
                )
    dataset = config.get("dataset")
    if isinstance(dataset, str) and dataset.endswith(DATA_SUFFIXES) and not Path(dataset).is_file():
        raise UserError(f"{source}: dataset file not found: {dataset}")
    if isinstance(config.get("output_dir"), str):
        _writable(config["output_dir"], source)
    if "resume_from_checkpoint" in config:
        resolve_resume(config["resume_from_checkpoint"], str(config.get("output_dir") or "."))


def has_chat_template(folder: Path) -> bool:
    """Whether a saved tokenizer carries a chat template (in tokenizer_config.json or a template file)."""
    if any((folder / name).is_file() for name in ("chat_template.jinja", "chat_template.json")):
        return True
    try:
        return bool(json.loads((folder / "tokenizer_config.json").read_text()).get("chat_template"))
    except (OSError, ValueError):
        return True  # no tokenizer config to judge by: the loader decides


def check_command(kind: str, config: dict, source: str) -> None:
    """Checks that need several fields of one command."""
    model = config.get("model_name_or_path")
    folder = Path(model).expanduser() if isinstance(model, str) else None
    if folder and folder.is_dir() and not config.get("chat_template_path") and not has_chat_template(folder):
        raise UserError(
            f"{source}: the tokenizer in {model} has no chat template: use an instruct/chat model, or set "
            "chat_template_path (train) to a Jinja template file"
        )
    calibrate = str(config.get("calibrate", "false")).lower() in ("true", "1", "yes", "")
    if kind == "extract" and "calibrate" in config and calibrate and config.get("judge", "none") == "none":
        raise UserError(
            f"{source}: calibrate=true needs a judge: pass --judge self (or an HF model, or openai:MODEL)"
        )
    trait = config.get("trait")
    if kind == "extract" and isinstance(trait, str):
        from persona_vaccine.traits import load_trait_spec

        load_trait_spec(trait)


def precheck(kind: str, recipe: str | None, argv: list[str]) -> None:
    """Check a command's recipe file and overrides cheaply; the full parse follows."""
    if any(a in ("-h", "--help") for a in argv):
        return
    fields = known_fields(kind)
    config = load_recipe_file(recipe, fields) if recipe else {}
    overrides = parse_overrides(argv, fields)
    merged = {**config, **overrides}
    source = (
        recipe if recipe and not overrides else "command line" if not recipe else f"{recipe} + command line"
    )
    if fields is None:  # no schema for these versions: the full parse checks the flags first, then the rest
        return
    check_values(merged, source)
    check_command(kind, merged, source)
