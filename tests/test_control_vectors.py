"""llama.cpp control-vector GGUF export/import (layer l <-> direction.(l-1))."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import tiny_llama
from gguf import GGUFReader, GGUFWriter
from helpers import random_vector

from persona_vaccine.interop.control_vectors import export_control_vector, import_control_vector
from persona_vaccine.steering.vector import VectorMismatch


@pytest.fixture(scope="module")
def model():
    return tiny_llama(layers=4, hidden=32)


@pytest.fixture(scope="module")
def vector(model, tmp_path_factory):
    folder = tmp_path_factory.mktemp("tiny-llama")
    model.config.save_pretrained(folder)  # a local model: its type and layer count can be read
    return random_vector(model, trait="evil", seed=1, model_id=str(folder))


def _field(reader: GGUFReader, key: str):
    return reader.get_field(key).contents()


def _write_raw(path, arch: str, tensors: dict[str, np.ndarray]) -> None:
    writer = GGUFWriter(path, arch)
    for name, data in tensors.items():
        writer.add_tensor(name, data)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()


def test_round_trip_maps_layer_to_direction_minus_one(vector, tmp_path):
    path = export_control_vector(vector, tmp_path / "evil.gguf")

    reader = GGUFReader(path)
    assert _field(reader, "general.architecture") == "controlvector"
    assert _field(reader, "controlvector.model_hint") == "llama"
    assert _field(reader, "controlvector.layer_count") == 3
    # default: every layer but 1 (direction.0 is rejected by llama.cpp)
    assert sorted(t.name for t in reader.tensors) == ["direction.1", "direction.2", "direction.3"]
    for t in reader.tensors:
        layer = int(t.name.split(".")[1]) + 1
        assert t.tensor_type.name == "F32"
        np.testing.assert_array_equal(np.asarray(t.data), vector.layers[layer].numpy())
    del reader

    back = import_control_vector(path, trait="evil", model_id=vector.model_id)
    assert sorted(back.layers) == [2, 3, 4]
    assert back.num_layers == 4 and back.hidden_size == 32
    for layer in back.layers:
        assert back[layer].dtype == torch.float32
        torch.testing.assert_close(back[layer], vector[layer], rtol=0, atol=0)
    assert back.extraction["source"] == "gguf_control_vector"
    assert back.extraction["model_hint"] == "llama"


def test_subset_with_coef(vector, tmp_path):
    path = export_control_vector(vector, tmp_path / "s.gguf", layers=[3], coef=-2.5, model_hint="qwen2")
    reader = GGUFReader(path)
    assert [t.name for t in reader.tensors] == ["direction.2"]
    assert _field(reader, "controlvector.layer_count") == 1
    del reader

    back = import_control_vector(path, "evil", "tiny", num_layers=4, expected_model_hint="qwen2")
    assert list(back.layers) == [3] and back.num_layers == 4
    torch.testing.assert_close(back[3], -2.5 * vector[3])
    assert back.extraction["model_hint"] == "qwen2"
    # the layer count comes from the model, never from the highest direction in the file
    assert import_control_vector(path, "evil", vector.model_id).num_layers == 4
    assert import_control_vector(path, "evil", "tiny", model=tiny_llama(layers=6, hidden=32)).num_layers == 6
    with pytest.raises(VectorMismatch, match="not the model's layer count.*pass num_layers"):
        import_control_vector(path, "evil", "tiny")


def test_export_writes_the_model_type(model, tmp_path):
    from transformers import AutoModelForCausalLM, Qwen2Config

    qwen = AutoModelForCausalLM.from_config(
        Qwen2Config(
            vocab_size=64,
            hidden_size=32,
            intermediate_size=64,
            num_hidden_layers=4,
            num_attention_heads=4,
            num_key_value_heads=2,
        )
    )
    qwen.config.save_pretrained(tmp_path / "qwen")
    vector = random_vector(qwen, model_id=str(tmp_path / "qwen"))
    path = export_control_vector(vector, tmp_path / "q.gguf")
    assert _field(GGUFReader(path), "controlvector.model_hint") == "qwen2"
    with pytest.raises(ValueError, match="model_hint"):
        export_control_vector(random_vector(model, model_id="someone/unknown"), tmp_path / "x.gguf")


def test_export_rejects_bad_layers(vector, tmp_path):
    with pytest.raises(ValueError, match="direction.0"):
        export_control_vector(vector, tmp_path / "a.gguf", layers=[1, 2])
    with pytest.raises(ValueError, match="out of range"):
        export_control_vector(vector, tmp_path / "a.gguf", layers=[5])
    assert not (tmp_path / "a.gguf").exists()


def test_import_accepts_direction_zero(tmp_path):
    path = tmp_path / "zero.gguf"
    _write_raw(path, "controlvector", {"direction.0": np.ones(8, dtype=np.float32)})
    back = import_control_vector(path, "t", "m", num_layers=2)
    assert list(back.layers) == [1] and back.hidden_size == 8 and back.extraction["model_hint"] is None


def test_import_errors(tmp_path):
    v = np.zeros(8, dtype=np.float32)

    wrong_arch = tmp_path / "llama.gguf"
    _write_raw(wrong_arch, "llama", {"direction.1": v})
    with pytest.raises(VectorMismatch, match=r"llama\.gguf.*not a control vector"):
        import_control_vector(wrong_arch, "t", "m")

    empty = tmp_path / "empty.gguf"
    _write_raw(empty, "controlvector", {})
    with pytest.raises(VectorMismatch, match=r"empty\.gguf.*no direction"):
        import_control_vector(empty, "t", "m")

    ragged = tmp_path / "ragged.gguf"
    _write_raw(ragged, "controlvector", {"direction.1": v, "direction.2": np.zeros(4, dtype=np.float32)})
    with pytest.raises(VectorMismatch, match=r"ragged\.gguf.*different sizes"):
        import_control_vector(ragged, "t", "m")

    other = tmp_path / "other.gguf"
    _write_raw(other, "controlvector", {"direction.1": v, "token_embd.weight": v})
    with pytest.raises(VectorMismatch, match="unexpected tensor 'token_embd.weight'"):
        import_control_vector(other, "t", "m")

    not_gguf = tmp_path / "junk.gguf"
    not_gguf.write_bytes(b"definitely not gguf")
    with pytest.raises(VectorMismatch, match=r"junk\.gguf.*not a GGUF"):
        import_control_vector(not_gguf, "t", "m")

    with pytest.raises(FileNotFoundError, match="missing.gguf"):
        import_control_vector(tmp_path / "missing.gguf", "t", "m")


def test_import_checks_hint_and_num_layers(vector, tmp_path):
    path = export_control_vector(vector, tmp_path / "v.gguf")
    with pytest.raises(VectorMismatch, match="'llama', expected 'qwen2'"):
        import_control_vector(path, "evil", "tiny", expected_model_hint="qwen2")
    with pytest.raises(VectorMismatch, match="num_layers=3"):
        import_control_vector(path, "evil", "tiny", num_layers=3)
