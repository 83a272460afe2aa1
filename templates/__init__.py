"""Jinja2 templates (*.j2) for every file ollama-rig writes to a host."""

from pathlib import Path

TEMPLATES = Path(__file__).resolve().parent


def template_path(name: str) -> str:
    """Absolute path of a template, so deploys work from any working directory."""
    return str(TEMPLATES / name)
