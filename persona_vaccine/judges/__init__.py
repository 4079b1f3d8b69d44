"""Judges: 0..100 trait and coherence scores from a local model, an OpenAI-compatible server, vLLM or a classifier."""
