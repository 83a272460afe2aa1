"""One validated settings object per host (DESIGN.md: roles read settings only through it)."""

from settings.load import SettingsError, load_settings, settings_from_data
from settings.schema import Settings

__all__ = ["Settings", "SettingsError", "load_settings", "settings_from_data"]
