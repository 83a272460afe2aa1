"""The project's facts and operations, one YAML case per branch (pyinfra-testing's format).

tests/unit/pyinfra_cases/facts/<module>.<Fact>/*.yaml: command output in, parsed value out.
tests/unit/pyinfra_cases/operations/<package>.<module>.<op>/*.yaml: facts in, commands out.
"""

from __future__ import annotations

from pathlib import Path

from pyinfra_testing.facts import make_fact_tests
from pyinfra_testing.operations import make_operation_tests

CASES = Path(__file__).parent / "pyinfra_cases"

for folder in sorted((CASES / "facts").iterdir()):
    fact_tests = make_fact_tests("facts", folder.name, folder)
    globals()[f"Test{fact_tests.__name__}"] = fact_tests

for folder in sorted((CASES / "operations").iterdir()):
    package, operation = folder.name.rsplit(".", 2)[0], ".".join(folder.name.rsplit(".", 2)[1:])
    op_tests = make_operation_tests(package, operation, folder)
    globals()[f"TestOp_{folder.name.replace('.', '_')}"] = op_tests
