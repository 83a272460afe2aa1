"""Aider's own code on ollama-rig's Aider files; run with the aider virtualenv's Python.

    build/aider-venv/bin/python tests/harness_checks/aider_check.py HOME

Reads HOME/.aider.conf.yml the way aider's main() does (its option parser, the file among the
default config files) and HOME/.aider.model.settings.yml with aider.models.register_models,
which raises on an unknown settings key. Prints JSON: {"options": vars(args), "unknown":
leftover args (unknown config keys land here), "settings": {name: ModelSettings as a dict},
"searched": the model settings files aider's main() would look for}. Never builds
aider.models.Model: that reaches the network.
"""

from __future__ import annotations

import dataclasses
import json
import sys
from pathlib import Path

import yaml
from aider import models
from aider.args import get_parser
from aider.main import generate_search_path_list

home = Path(sys.argv[1])
parser = get_parser([str(home / ".aider.conf.yml")], None)
args, unknown = parser.parse_known_args([])
settings_file = home / ".aider.model.settings.yml"
loaded = models.register_models([str(settings_file)])
names = {entry["name"] for entry in yaml.safe_load(settings_file.read_text())}
searched = generate_search_path_list(".aider.model.settings.yml", None, None)
print(
    json.dumps(
        {
            "options": vars(args),
            "unknown": unknown,
            "loaded": loaded,
            "settings": {
                s.name: dataclasses.asdict(s) for s in models.MODEL_SETTINGS if s.name in names
            },
            "searched": [str(path) for path in searched],
        },
        default=str,
    )
)
