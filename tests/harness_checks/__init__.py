"""Offline checks of the harness configs by each harness's own code (HARNESSES.md).

package.json pins the npm packages (installed into node_modules/ by scripts/harness-checks.sh),
aider-requirements.txt the Aider release for its own virtualenv (build/aider-venv). The tests
are tests/unit/test_harness_checks.py (marker harness_check).
"""
