"""Persona vectors in other tools' formats: llama.cpp and repeng control-vector GGUF files."""
