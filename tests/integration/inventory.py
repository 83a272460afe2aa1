"""Inventory of the integration tier: one disposable container, its data passed as JSON.

Set by tests/integration/deployer.py: RIG_TEST_HOST (container id), RIG_TEST_DATA (host data).
"""

import json
import os

hosts = [
    (f"@docker/{os.environ['RIG_TEST_HOST']}", json.loads(os.environ.get("RIG_TEST_DATA", "{}"))),
]
