"""The raw outputs the doctor reads on a live host (doctor/kinds.py names the commands)."""

from __future__ import annotations

from pyinfra.api import FactBase

from doctor.kinds import KINDS


class CapturedOutput(FactBase[str]):
    """The text a read-only capture command prints, stderr included; "" when it printed nothing.

    The command always exits 0: a missing tool or a failing driver is an output to diagnose,
    not a failed fact.

    .. code:: python

        host.get_fact(CapturedOutput, kind="nvidia-smi")
        # "NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver..."
    """

    default = str

    def command(self, kind: str) -> str:
        live = KINDS[kind].live
        if live is None:
            raise ValueError(f"{kind} is captured by hand only (see doctor/README.md)")
        return f"{{ {live} ; }} 2>&1 || true"

    def process(self, output: list[str]) -> str:
        return "\n".join(output)
