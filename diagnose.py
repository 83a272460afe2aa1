"""ollama-rig doctor, live: `pyinfra inventory/home.py diagnose.py` (--sudo reads the journal).

Reads each host with read-only commands (nvidia-smi, ollama ps, the server log, /proc/cpuinfo,
device nodes, Docker; doctor/kinds.py lists them), then prints the diagnosis per host: each
cause of a CPU fallback with its evidence and fix. Queues no operation, changes nothing, and
works on any machine, GPU or not. For a box pyinfra cannot reach: `python -m doctor --captured`.
"""

from pyinfra import host, logger

from doctor.captures import from_outputs
from doctor.kinds import KINDS
from doctor.report import build_report, render_text
from facts.doctor import CapturedOutput

outputs = {
    kind: host.get_fact(CapturedOutput, kind=kind)
    for kind, spec in KINDS.items()
    if spec.live is not None
}
report = build_report(from_outputs(outputs, origin=host.name))
for line in render_text(report).splitlines():
    logger.info(f"{host.print_prefix}{line}")
