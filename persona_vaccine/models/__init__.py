"""Models: loading (hub ids, local folders, the embedded GGUF), chat formatting, decoder layers, generation."""
