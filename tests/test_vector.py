"""PersonaVector: files, checks against the model, arithmetic."""

from __future__ import annotations

import json

import pytest
import torch
from conftest import tiny_llama
from helpers import random_vector
from safetensors.torch import save_file

from persona_vaccine.steering.vector import PersonaVector, VectorMismatch


@pytest.fixture
def vec():
    return random_vector(tiny_llama(layers=4, hidden=32), model_id="org/tiny")


def test_save_load_round_trip(vec, tmp_path):
    path = vec.save(tmp_path / "evil.safetensors")
    loaded = PersonaVector.load(path)
    assert loaded.trait == "evil" and loaded.model_id == "org/tiny"
    assert (loaded.hidden_size, loaded.num_layers, loaded.position) == (32, 4, "response_avg")
    assert loaded.mean_norms == vec.mean_norms
    for layer in vec.layers:
        assert torch.equal(loaded[layer], vec[layer])


def test_file_is_plain_safetensors_with_json_metadata(vec, tmp_path):
    from safetensors import safe_open

    path = vec.save(tmp_path / "v.safetensors")
    with safe_open(str(path), framework="pt") as f:
        meta = f.metadata()
        assert sorted(f.keys()) == [f"layer.{i}" for i in range(1, 5)]
    assert json.loads(meta["mean_norms"])["2"] == 4.0
    assert "hidden_states[l]" in meta["layer_convention"]


def test_check_model_errors_and_warning(vec):
    with pytest.raises(VectorMismatch, match="hidden size 32.*hidden size 64"):
        vec.check_model(64, 4)
    with pytest.raises(VectorMismatch, match="4 layers.*has 6"):
        vec.check_model(32, 6)
    with pytest.warns(UserWarning, match="extracted from 'org/tiny' but is used with 'org/other'"):
        vec.check_model(32, 4, "org/other")
    vec.check_model(32, 4, "org/tiny")


def test_vector_for_model_loads_and_checks_against_the_model(vec, tmp_path):
    """The one load-and-check function: a file or a vector, shapes from the model itself, the file named."""
    import warnings

    from persona_vaccine.steering.vector import vector_for_model

    path = vec.save(tmp_path / "evil.safetensors")
    model = tiny_llama(layers=4, hidden=32)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # same model id: no warning
        loaded = vector_for_model(path, model, "org/tiny")
    assert loaded.trait == "evil" and torch.equal(loaded[2], vec[2])
    assert vector_for_model(vec, model) is vec
    with pytest.raises(VectorMismatch, match=rf"^{path}: .*4 layers, but the model has 6"):
        vector_for_model(path, tiny_llama(layers=6, hidden=32))
    with pytest.raises(
        VectorMismatch, match="^vector 'evil': .*hidden size 32, but the model has hidden size 64"
    ):
        vector_for_model(vec, tiny_llama(layers=4, hidden=64))
    with pytest.warns(UserWarning, match="used with 'org/other'") as record:
        vector_for_model(vec, model, "org/other")
    assert record[0].filename == __file__  # the warning points at the caller, not at steering/vector.py


def test_malformed_files_are_refused(tmp_path):
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"not a safetensors file")
    with pytest.raises(VectorMismatch, match="not a safetensors persona vector"):
        PersonaVector.load(bad)
    foreign = tmp_path / "foreign.safetensors"
    save_file({"x": torch.zeros(3)}, str(foreign))
    with pytest.raises(VectorMismatch, match="'format'"):
        PersonaVector.load(foreign)
    with pytest.raises(FileNotFoundError):
        PersonaVector.load(tmp_path / "missing.safetensors")


def test_wrong_shapes_rejected():
    with pytest.raises(VectorMismatch, match="shape"):
        PersonaVector("t", "m", 8, 2, {1: torch.zeros(7)})
    with pytest.raises(ValueError, match="out of range"):
        PersonaVector("t", "m", 8, 2, {3: torch.zeros(8)})


def test_arithmetic(vec):
    other = random_vector(tiny_llama(layers=4, hidden=32), trait="sycophantic", seed=9)
    torch.testing.assert_close((2 * vec)[3], 2 * vec[3])
    torch.testing.assert_close((vec * 0.5)[1], 0.5 * vec[1])
    torch.testing.assert_close((-vec)[2], -vec[2])
    torch.testing.assert_close((vec + other)[4], vec[4] + other[4])
    torch.testing.assert_close((vec - other)[4], vec[4] - other[4])
    assert (vec + other).trait == "evil+sycophantic"
    torch.testing.assert_close(vec.unit(1).norm(), torch.tensor(1.0))
    inc = vec.incremental()
    torch.testing.assert_close(inc[1], vec[1])
    torch.testing.assert_close(inc[3], vec[3] - vec[2])
    with pytest.raises(VectorMismatch, match="different models"):
        vec + random_vector(tiny_llama(layers=2, hidden=32))


def test_default_layer_prefers_calibrated(vec):
    from dataclasses import replace

    assert vec.default_layer() == 2
    assert replace(vec, layer=3).default_layer() == 3
