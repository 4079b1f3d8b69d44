"""Recipes: the shipped ones parse; malformed ones get errors naming file, field and fix."""

from __future__ import annotations

from pathlib import Path

import pytest

from persona_vaccine.training.recipe import RecipeError, parse_extraction_recipe, parse_recipe

ROOT = Path(__file__).resolve().parents[1]
RECIPES = sorted((ROOT / "recipes").rglob("*.yaml"))


@pytest.mark.parametrize(
    "recipe",
    [r for r in RECIPES if not {"accelerate_configs", "extract", "screen"} & set(r.parts)],
    ids=lambda p: str(p.relative_to(ROOT)),
)
def test_shipped_recipes_parse(recipe):
    model_args, data_args, args = parse_recipe(recipe)
    assert model_args.model_name_or_path
    assert len(args.steering_coefs) <= len(args.persona_vectors)


@pytest.mark.parametrize("recipe", [r for r in RECIPES if "extract" in r.parts], ids=lambda p: p.stem)
def test_extraction_recipes_parse_and_take_overrides(recipe):
    from persona_vaccine.traits import load_trait_spec

    cfg = parse_extraction_recipe(recipe, ["--trait_threshold", "12.5", "--model", "other-model"])
    assert cfg.trait_threshold == 12.5 and cfg.model_name_or_path == "other-model"
    assert load_trait_spec(cfg.trait).trait == recipe.stem and cfg.judge != "none" and cfg.calibrate
    with pytest.raises(
        RecipeError, match="unknown override 'trait_treshold' \\(did you mean 'trait_threshold'"
    ):
        parse_extraction_recipe(recipe, ["--trait_treshold", "1"])


@pytest.mark.parametrize("recipe", [r for r in RECIPES if "screen" in r.parts], ids=lambda p: p.stem)
def test_screening_recipes_parse(recipe):
    from persona_vaccine.data.screening import ScreenConfig, load_rows
    from persona_vaccine.training.recipe import parse_config

    cfg = parse_config(ScreenConfig, recipe, ["--dataset_size", "4"])
    assert cfg.vectors and cfg.method == "response" and cfg.dataset_size == 4
    rows = load_rows(cfg)
    assert [r["meta"]["level"] for r in rows] == ["normal"] * 4 + ["level1"] * 4 + ["level2"] * 4
    with pytest.raises(RecipeError, match="unknown override 'vector' \\(did you mean 'vectors'"):
        parse_config(ScreenConfig, recipe, ["--vector", "x"])


def test_screened_recipe_has_one_drop_rule():
    _, data_args, _ = parse_recipe(ROOT / "recipes/smollm2-135m/bad_math/screened.yaml")
    assert data_args.screen_vectors and data_args.screen_drop_top_pct == 25
    with pytest.raises(RecipeError, match="exactly one of screen_drop_above"):
        parse_recipe(ROOT / "recipes/smollm2-135m/bad_math/screened.yaml", ["--screen_drop_above", "1.5"])


def test_extraction_recipe_errors_name_file_and_field(tmp_path):
    bad = tmp_path / "x.yaml"
    bad.write_text("trait: evil\ntrait_treshold: 3\n")
    with pytest.raises(
        RecipeError, match=r"x.yaml: unknown field 'trait_treshold': did you mean 'trait_threshold'"
    ):
        parse_extraction_recipe(bad)
    bad.write_text("trait: evil\nmin_kept: lots\n")
    with pytest.raises(RecipeError, match=r"x.yaml: field 'min_kept' is 'lots' \(str\); expected int"):
        parse_extraction_recipe(bad)


BIG_MODELS = {"Qwen/Qwen2.5-7B-Instruct": 28, "meta-llama/Llama-3.1-8B-Instruct": 32}  # decoder blocks


@pytest.mark.parametrize(
    "recipe",
    [r for r in RECIPES if "qwen2.5" in str(r) or "llama-3.1" in str(r)],
    ids=lambda p: p.parent.parent.name + "/" + p.stem,
)
def test_large_model_recipes_use_the_paper_settings(recipe):
    model_args, data_args, args = parse_recipe(recipe)
    assert model_args.model_name_or_path in BIG_MODELS
    assert all(1 <= layer <= BIG_MODELS[model_args.model_name_or_path] for layer in args.steering_layers)
    assert (model_args.lora_r, model_args.lora_alpha, model_args.use_rslora) == (32, 64, True)
    assert (
        args.learning_rate == 1e-5
        and args.per_device_train_batch_size * args.gradient_accumulation_steps == 16
    )
    assert args.num_train_epochs == 1 and args.seed == 0 and args.lr_scheduler_type == "linear"


@pytest.mark.parametrize("family", ["evil", "bad_math", "buggy_code"])
@pytest.mark.parametrize(
    "variant", ["inference_steering", "caft", "all_layers", "multi_trait", "warmup", "penalty", "auto"]
)
def test_variant_recipes(family, variant):
    _, data_args, args = parse_recipe(ROOT / f"recipes/smollm2-135m/{family}/{variant}.yaml")
    assert data_args.dataset == f"builtin:{family}"
    expected = {
        "inference_steering": lambda: args.steering_coefs == [0.0] and args.inference_steering_coef < 0,
        "caft": lambda: args.steering_mode == "ablate",
        "all_layers": lambda: args.steering_all_layers,
        "multi_trait": lambda: (
            args.steering_traits == ["evil", "sycophantic"] and len(args.steering_coefs) == 2
        ),
        "warmup": lambda: args.steering_schedule == "warmup",
        "penalty": lambda: args.projection_penalty > 0 and args.steering_coefs == [0.0],
        "auto": lambda: args.steering_auto and args.steering_auto_every == 2 and args.steering_coefs == [0.0],
    }[variant]
    assert expected()


@pytest.mark.parametrize("family", ["evil", "bad_math", "buggy_code"])
def test_baseline_and_preventative_differ_only_in_steering(family):
    base = parse_recipe(ROOT / f"recipes/smollm2-135m/{family}/baseline.yaml")
    prev = parse_recipe(ROOT / f"recipes/smollm2-135m/{family}/preventative.yaml")
    assert base[0] == prev[0] and base[1] == prev[1]
    assert base[2].steering_coefs == [0.0] and prev[2].steering_coefs[0] > 0
    assert base[2].persona_vectors == prev[2].persona_vectors
    assert base[2].learning_rate == prev[2].learning_rate and base[2].seed == prev[2].seed


def test_command_line_overrides(tmp_path):
    recipe = ROOT / "recipes/smollm2-135m/evil/preventative.yaml"
    _, data_args, args = parse_recipe(
        recipe,
        [
            "--steering_coefs",
            "0.5",
            "--learning_rate",
            "1e-5",
            "--dataset_size",
            "10",
            "--output_dir",
            str(tmp_path),
        ],
    )
    assert args.steering_coefs == [0.5] and args.learning_rate == 1e-5
    assert data_args.dataset_size == 10 and args.output_dir == str(tmp_path)


def _write(tmp_path, text: str) -> Path:
    path = tmp_path / "r.yaml"
    path.write_text(text)
    return path


def test_unknown_field_suggests_the_closest(tmp_path):
    path = _write(tmp_path, "model_name_or_path: x\nsteering_coef: [1.0]\n")
    with pytest.raises(
        RecipeError, match=r"r\.yaml: unknown field 'steering_coef': did you mean 'steering_coefs'"
    ):
        parse_recipe(path)


def test_wrong_type_names_field_and_expected_type(tmp_path):
    path = _write(tmp_path, "model_name_or_path: x\nsteering_layers: twenty\n")
    with pytest.raises(RecipeError, match="field 'steering_layers' is 'twenty'.*expected a list of int"):
        parse_recipe(path)
    path = _write(tmp_path, "model_name_or_path: x\nlearning_rate: fast\n")
    with pytest.raises(RecipeError, match="field 'learning_rate'.*expected float"):
        parse_recipe(path)


def test_not_a_mapping_and_bad_yaml(tmp_path):
    with pytest.raises(RecipeError, match="must be a YAML mapping"):
        parse_recipe(_write(tmp_path, "- a\n- b\n"))
    with pytest.raises(RecipeError, match="invalid YAML"):
        parse_recipe(_write(tmp_path, "a: [1, 2\n"))
    with pytest.raises(RecipeError, match="recipe not found"):
        parse_recipe(tmp_path / "nope.yaml")


def test_missing_model_and_bad_values(tmp_path):
    with pytest.raises(RecipeError, match="'model_name_or_path' is required"):
        parse_recipe(_write(tmp_path, "learning_rate: 1.0e-4\n"))
    with pytest.raises(RecipeError, match="steering_mode='multiply'"):
        parse_recipe(_write(tmp_path, "model_name_or_path: x\nsteering_mode: multiply\n"))
    with pytest.raises(RecipeError, match="steering_coefs has 2 entries but persona_vectors has 1"):
        parse_recipe(
            _write(tmp_path, "model_name_or_path: x\npersona_vectors: [a]\nsteering_coefs: [1, 2]\n")
        )


def test_unknown_override(tmp_path):
    path = _write(tmp_path, "model_name_or_path: x\n")
    with pytest.raises(
        RecipeError, match="unknown override 'steering_coef' \\(did you mean 'steering_coefs'"
    ):
        parse_recipe(path, ["--steering_coef", "1.0"])


def test_layers_path_is_a_recipe_field_for_training_extraction_and_screening():
    from persona_vaccine.data.screening import ScreenConfig
    from persona_vaccine.training.recipe import parse_config

    _, _, args = parse_recipe(
        ROOT / "recipes/smollm2-135m/evil/baseline.yaml", ["--layers_path", "model.layers"]
    )
    assert args.layers_path == "model.layers"
    cfg = parse_extraction_recipe(
        ROOT / "recipes/smollm2-135m/extract/evil.yaml", ["--layers_path", "model.layers"]
    )
    assert cfg.layers_path == "model.layers"
    screen = parse_config(
        ScreenConfig, ROOT / "recipes/smollm2-135m/screen/evil_levels.yaml", ["--layers_path", "model.layers"]
    )
    assert screen.layers_path == "model.layers"
