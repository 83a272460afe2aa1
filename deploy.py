"""ollama-rig: `pyinfra inventory/home.py deploy.py` (add --dry to only look).

preflight -> topology role -> models -> verification manifest. Settings are validated and the
host is checked before any operation is queued, so bad input changes nothing anywhere.
"""

from pyinfra import host

from roles.models import ensure_models
from roles.native import install_ollama
from roles.preflight import preflight
from roles.verify_manifest import write_manifest
from settings import load_settings

settings = load_settings(host)
facts, _verdict = preflight(settings)

install_ollama(settings=settings, machine=facts.machine)
ensure_models(settings=settings)
write_manifest(settings=settings)
