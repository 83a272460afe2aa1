"""Test fixtures standing in for Ollama (integration tier only; see ollama_standin.py)."""
