"""ollama-rig: `pyinfra inventory/home.py deploy.py` (add --dry to only look).

preflight -> topology role -> models -> verification manifest. Settings are validated and the
host is checked before any operation is queued, so bad input changes nothing anywhere.
"""

from pyinfra import host

from roles.harness import configure_harnesses
from roles.models import ensure_models
from roles.preflight import preflight
from roles.topology import TOPOLOGIES
from roles.verify_manifest import write_manifest
from settings import load_settings

checked = preflight(load_settings(host))
# From here on the effective settings: the sizing planner's changes, if any, are applied.
settings = checked.settings

# What this topology installs here (roles/topology.py: native, docker, lxc, kvm).
topology = TOPOLOGIES[settings.topology]
topology.install(checked)
if topology.ollama_cli is not None:
    # Ollama runs on this host: its models, the harness configs and the verify manifest.
    ensure_models(settings=settings)
    configure_harnesses(settings=settings)
    write_manifest(
        settings=settings,
        model_contexts=checked.model_contexts,
        ollama_cli=topology.ollama_cli(settings),
    )
