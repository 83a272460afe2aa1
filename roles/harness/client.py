"""Only the coding harness configs, for a machine that runs no Ollama itself (a laptop).

    pyinfra inventory/lab.py roles/harness/client.py --limit laptop

Its inventory entry sets harness_user and harness_endpoint (the GPU box's inventory name or
URL); deploy.py would also install Ollama there.
"""

from pyinfra import host

from roles.harness import configure_harnesses
from settings import load_settings

configure_harnesses(settings=load_settings(host))
