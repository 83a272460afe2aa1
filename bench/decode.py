"""Decode and prompt tok/s of each model on a live host, beside its memory-bandwidth ceiling.

    .venv/bin/python -m bench.decode --hosts ssh://box|docker://ID|local:// [--topology T]
    .venv/bin/python -m bench.decode --api-url http://127.0.0.1:11434 --gpu "RTX 3070"
    .venv/bin/python -m bench.decode --results native.json docker.json lxc.json

Each model gets one warm-up generate (it loads the model at the server's own context), then
--runs timed ones; speeds come from Ollama's own timings (FACTS.md section 2: decode tok/s =
eval_count / eval_duration * 1e9, prompt tok/s alike), medians over the runs. The ceiling is
the GPU's bandwidth / weight bytes read per token (sizing.bandwidth, FACTS.md section 4), so
the ratio says how close the box comes to what its memory allows. With --results, files
measured in several topologies on the same box are combined, and each topology's overhead is
given relative to native. Writes a table (stdout), JSON and, when matplotlib is installed
(requirements-bench.txt), a PNG chart of measured vs ceiling per model and topology.

--hosts goes through testinfra and the host's own curl, so the HTTP calls are made on the host
(a container's loopback, an SSH box's): nothing needs to reach the API from outside it.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol

from facts.parsers.ollama import parse_api_ps
from sizing.bandwidth import ceiling_tok_s, find_gpu
from sizing.catalog import find_model

MANIFEST = "/etc/ollama-rig/expected.json"  # written by the deploy (roles/verify_manifest.py)
DEFAULT_API = "http://127.0.0.1:11434"
# A code-shaped prompt of a few hundred tokens, so prompt tok/s is not the timing of ten tokens.
PROMPT = (
    "Write a Python function that parses an nginx access log line into a dataclass with the "
    "client address, timestamp, method, path, status and bytes sent. Explain each regular "
    "expression group, list three malformed lines it must reject and why, and add pytest "
    "cases for them. " * 4
)


class BenchError(Exception):
    """A host or file the benchmark cannot use; main prints it as one line."""


# -- arithmetic on recorded generate responses ------------------------------------------------


@dataclass(frozen=True)
class RunTiming:
    """The timing fields of one final /api/generate object (durations in ns)."""

    eval_count: int
    eval_ns: int
    prompt_count: int
    prompt_ns: int

    @property
    def decode_tok_s(self) -> float | None:
        return _rate(self.eval_count, self.eval_ns)

    @property
    def prompt_tok_s(self) -> float | None:
        return _rate(self.prompt_count, self.prompt_ns)


def _rate(count: int, ns: int) -> float | None:
    """count / ns * 1e9 (FACTS.md section 2); None where Ollama timed nothing."""
    return count / ns * 1e9 if count > 0 and ns > 0 else None


def timing_of(response: dict[str, Any]) -> RunTiming:
    """The timings of a final generate object; a cached prompt reports no prompt fields."""
    if not response.get("done"):
        raise BenchError("generate response is not the final object (done is not true)")
    if "eval_count" not in response or "eval_duration" not in response:
        raise BenchError("generate response has no eval_count/eval_duration")
    return RunTiming(
        eval_count=int(response["eval_count"]),
        eval_ns=int(response["eval_duration"]),
        prompt_count=int(response.get("prompt_eval_count") or 0),
        prompt_ns=int(response.get("prompt_eval_duration") or 0),
    )


def median_of(values: Sequence[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return statistics.median(present) if present else None


@dataclass
class ModelResult:
    """One model on one host: medians of the runs, the ceiling and the ratio."""

    model: str
    runs: int
    decode_tok_s: float | None
    prompt_tok_s: float | None
    decode_runs: list[float | None]
    prompt_runs: list[float | None]
    bytes_per_token: int | None
    bytes_source: str
    ceiling_tok_s: float | None
    ratio: float | None
    processor: str | None = None
    gpu_percent: int | None = None


def summarize(
    model: str,
    responses: Sequence[dict[str, Any]],
    bytes_per_token: int | None,
    bandwidth_bytes_per_s: float | None,
    bytes_source: str = "",
    processor: str | None = None,
    gpu_percent: int | None = None,
) -> ModelResult:
    """Medians of the runs' decode and prompt tok/s, the bandwidth ceiling and measured/ceiling."""
    timings = [timing_of(r) for r in responses]
    decode = [t.decode_tok_s for t in timings]
    prompt = [t.prompt_tok_s for t in timings]
    ceiling = (
        ceiling_tok_s(bandwidth_bytes_per_s, bytes_per_token)
        if bandwidth_bytes_per_s and bytes_per_token
        else None
    )
    measured = median_of(decode)
    return ModelResult(
        model=model,
        runs=len(timings),
        decode_tok_s=measured,
        prompt_tok_s=median_of(prompt),
        decode_runs=decode,
        prompt_runs=prompt,
        bytes_per_token=bytes_per_token,
        bytes_source=bytes_source,
        ceiling_tok_s=ceiling,
        ratio=measured / ceiling if measured is not None and ceiling else None,
        processor=processor,
        gpu_percent=gpu_percent,
    )


def bytes_per_token(model: str, file_bytes: int | None) -> tuple[int | None, str]:
    """Weight bytes read per decoded token, and where the figure came from.

    The host's own file size (/api/tags) when known, scaled to the active share for an MoE of
    the catalog (FACTS.md section 4); else the catalog's weights; else unknown (no ceiling).
    """
    spec = find_model(model) or find_model(model.split(":")[0] + ":latest")
    if file_bytes:
        if spec and spec.is_moe and spec.params_b and spec.active_params_b:
            share = spec.active_params_b / spec.params_b
            return int(file_bytes * share), f"/api/tags size x active share {share:.3f} (catalog)"
        return file_bytes, "/api/tags size"
    if spec:
        return spec.bytes_per_token, f"catalog {spec.tag}"
    return None, "unknown"


@dataclass
class HostResult:
    """One benchmark of one host in one topology."""

    host: str
    topology: str
    gpu: str | None
    bandwidth_gb_s: float | None
    bandwidth_source: str
    num_predict: int
    models: list[ModelResult] = field(default_factory=list)


def result_from_json(data: dict[str, Any]) -> HostResult:
    models = [ModelResult(**m) for m in data.get("models", [])]
    return HostResult(**{**data, "models": models})


def overhead_rows(results: Sequence[HostResult]) -> list[dict[str, Any]]:
    """Per model and non-native topology: decode tok/s lost relative to native on the same box.

    overhead_pct = (native - topology) / native * 100; positive means slower than native.
    """
    native = {m.model: m for r in results if r.topology == "native" for m in r.models}
    rows = []
    for result in results:
        if result.topology == "native":
            continue
        for m in result.models:
            base = native.get(m.model)
            if base is None or not base.decode_tok_s or m.decode_tok_s is None:
                continue
            rows.append(
                {
                    "model": m.model,
                    "topology": result.topology,
                    "native_tok_s": base.decode_tok_s,
                    "decode_tok_s": m.decode_tok_s,
                    "overhead_pct": (base.decode_tok_s - m.decode_tok_s) / base.decode_tok_s * 100,
                }
            )
    return rows


def same_box_warning(results: Sequence[HostResult]) -> str | None:
    gpus = {r.gpu for r in results}
    if len(gpus) > 1:
        return (
            f"results come from different GPUs ({sorted(map(str, gpus))}): overheads compare boxes"
        )
    return None


# -- output ----------------------------------------------------------------------------------


def _num(value: float | None, fmt: str = "8.1f") -> str:
    return format(value, fmt) if value is not None else format("-", ">" + fmt.split(".")[0])


def table(results: Sequence[HostResult]) -> str:
    """The human-readable report: one line per model and topology, then the overheads."""
    lines = [
        f"{'topology':<10} {'model':<28} {'decode':>8} {'prompt':>8} {'ceiling':>8}"
        f" {'ratio':>6} {'processor':<16} gpu",
        f"{'':<10} {'':<28} {'tok/s':>8} {'tok/s':>8} {'tok/s':>8}",
    ]
    for r in results:
        for m in r.models:
            lines.append(
                f"{r.topology:<10} {m.model:<28} {_num(m.decode_tok_s)} {_num(m.prompt_tok_s)}"
                f" {_num(m.ceiling_tok_s)} {_num(m.ratio, '6.2f')} {m.processor or '-':<16}"
                f" {r.gpu or '-'}" + (f" ({r.bandwidth_gb_s:g} GB/s)" if r.bandwidth_gb_s else "")
            )
    overheads = overhead_rows(results)
    if overheads:
        lines += ["", f"{'overhead vs native':<39} {'native':>8} {'this':>8} {'lost':>7}"]
        for row in overheads:
            lines.append(
                f"{row['topology']:<10} {row['model']:<28} {row['native_tok_s']:8.1f}"
                f" {row['decode_tok_s']:8.1f} {row['overhead_pct']:6.1f}%"
            )
    warning = same_box_warning(results)
    if warning:
        lines += ["", "warning: " + warning]
    return "\n".join(lines)


def to_json(results: Sequence[HostResult]) -> dict[str, Any]:
    return {
        "results": [asdict(r) for r in results],
        "overhead": overhead_rows(results),
        "warning": same_box_warning(results),
    }


def load_results(paths: Sequence[Path]) -> list[HostResult]:
    """Results from earlier runs' JSON files (each holds {"results": [...]})."""
    results = []
    for path in paths:
        try:
            data = json.loads(path.read_text())
            results += [result_from_json(r) for r in data["results"]]
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise BenchError(f"{path}: not a bench.decode result file ({exc})") from exc
    return results


def write_chart(results: Sequence[HostResult], path: Path) -> Path:
    """A PNG: per model, a bar of measured decode tok/s per topology and the ceiling beside it.

    matplotlib is an optional extra (requirements-bench.txt), imported only here.
    """
    import matplotlib

    matplotlib.use("Agg")  # files only, no display
    import matplotlib.pyplot as plt

    models = list(dict.fromkeys(m.model for r in results for m in r.models))
    topologies = list(dict.fromkeys(r.topology for r in results))
    series: list[tuple[str, list[float]]] = []
    for topology in topologies:
        found = {m.model: m for r in results if r.topology == topology for m in r.models}
        series.append(
            (topology, [(found[x].decode_tok_s or 0.0) if x in found else 0.0 for x in models])
        )
    ceilings = {m.model: m.ceiling_tok_s for r in results for m in r.models if m.ceiling_tok_s}
    series.append(("ceiling (bandwidth)", [ceilings.get(x) or 0.0 for x in models]))

    width = 0.8 / len(series)
    fig, ax = plt.subplots(figsize=(max(7.0, 1.2 * len(models) * len(series)), 4.5))
    for number, (label, values) in enumerate(series):
        xs = [i + (number - (len(series) - 1) / 2) * width for i in range(len(models))]
        hatch = "//" if label.startswith("ceiling") else None
        ax.bar(xs, values, width, label=label, hatch=hatch, fill=hatch is None, edgecolor="black")
    ax.set_xticks(range(len(models)))
    ax.set_xticklabels(models, rotation=20, ha="right")
    ax.set_ylabel("decode tokens/s")
    gpus = sorted({r.gpu or "unknown GPU" for r in results})
    ax.set_title(
        f"Decode tok/s: measured vs memory-bandwidth ceiling\n{', '.join(gpus)}", fontsize=10
    )
    ax.legend(fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


# -- talking to a live host --------------------------------------------------------------------


class Api(Protocol):
    def get(self, path: str) -> Any: ...
    def post(self, path: str, body: dict[str, Any]) -> Any: ...


class UrlApi:
    """The API over HTTP from this machine (--api-url)."""

    def __init__(self, url: str, timeout: float = 900.0) -> None:
        self.url, self.timeout = url.rstrip("/"), timeout

    def _call(self, path: str, body: dict[str, Any] | None) -> Any:
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(
            self.url + path, data=data, headers={"Content-Type": "application/json"}
        )
        with urllib.request.urlopen(request, timeout=self.timeout) as response:
            return json.loads(response.read())

    def get(self, path: str) -> Any:
        return self._call(path, None)

    def post(self, path: str, body: dict[str, Any]) -> Any:
        return self._call(path, body)


class HostApi:
    """The API through a testinfra host's own curl (the call is made on the host)."""

    def __init__(self, host: Any, url: str) -> None:
        self.host, self.url = host, url.rstrip("/")

    def _curl(self, command: str, *args: str) -> Any:
        result = self.host.run(command, *args)
        if result.rc != 0:
            raise BenchError(f"curl on the host failed ({result.rc}): {result.stderr.strip()}")
        return json.loads(result.stdout)

    def get(self, path: str) -> Any:
        return self._curl("curl -fsS --max-time 30 %s", self.url + path)

    def post(self, path: str, body: dict[str, Any]) -> Any:
        return self._curl("curl -fsS --max-time 900 -d %s %s", json.dumps(body), self.url + path)


def generate_request(model: str, num_predict: int) -> dict[str, Any]:
    """No num_ctx: the model runs at the context the deploy gave it (another would reload it)."""
    return {
        "model": model,
        "prompt": PROMPT,
        "stream": False,
        "keep_alive": "10m",
        "options": {"num_predict": num_predict, "temperature": 0, "seed": 42},
    }


def measure_model(api: Api, model: str, runs: int, num_predict: int) -> list[dict[str, Any]]:
    """One warm-up generate (loads the model), then runs timed ones; the final objects."""
    api.post("/api/generate", generate_request(model, num_predict))
    return [api.post("/api/generate", generate_request(model, num_predict)) for _ in range(runs)]


def _tagged(model: str) -> str:
    """Ollama's full name: a model named without a tag is `:latest`."""
    return model if ":" in model else model + ":latest"


def placement(api: Api, model: str) -> tuple[str | None, int | None]:
    """The model's PROCESSOR as `ollama ps` would print it, from /api/ps."""
    rows = parse_api_ps(json.dumps(api.get("/api/ps")))["models"]
    row = next((r for r in rows if r["name"] in (model, _tagged(model))), None)
    return (row["processor"], row["gpu_percent"]) if row else (None, None)


def bench_host(
    api: Api,
    label: str,
    topology: str,
    gpu_name: str | None,
    models: Sequence[str],
    runs: int,
    num_predict: int,
    bandwidth_gb_s: float | None = None,
    progress: Callable[[str], None] = lambda _: None,
) -> HostResult:
    spec = find_gpu(gpu_name) if gpu_name else None
    source = "--bandwidth-gb-s" if bandwidth_gb_s else (spec.source if spec else "unknown GPU")
    gb_s = bandwidth_gb_s or (spec.bandwidth_gb_s if spec else None)
    sizes = {m.get("name"): m.get("size") for m in api.get("/api/tags").get("models", [])}
    result = HostResult(label, topology, gpu_name, gb_s, source, num_predict)
    for model in models:
        progress(f"{label}: {model} ({runs} runs + warm-up)")
        responses = measure_model(api, model, runs, num_predict)
        processor, gpu_percent = placement(api, model)
        per_token, bytes_source = bytes_per_token(
            model, sizes.get(model, sizes.get(_tagged(model)))
        )
        result.models.append(
            summarize(
                model,
                responses,
                per_token,
                gb_s * 1e9 if gb_s else None,
                bytes_source,
                processor,
                gpu_percent,
            )
        )
    return result


def gpu_name_on(run: Callable[[str], str | None]) -> str | None:
    """The first GPU's name from nvidia-smi on the host, or None where there is none."""
    out = run("nvidia-smi --query-gpu=name --format=csv,noheader")
    lines = [x.strip() for x in (out or "").splitlines() if x.strip()]
    return lines[0] if lines and "failed" not in lines[0].lower() else None


def _testinfra_run(host: Any) -> Callable[[str], str | None]:
    def run(command: str) -> str | None:
        result = host.run(command)
        return result.stdout if result.rc == 0 else None

    return run


def _local_run(command: str) -> str | None:
    import shutil
    import subprocess

    if shutil.which(command.split()[0]) is None:
        return None
    proc = subprocess.run(command.split(), capture_output=True, text=True, check=False)
    return proc.stdout if proc.returncode == 0 else None


def bench_hosts(args: argparse.Namespace) -> list[HostResult]:
    import testinfra

    results = []
    for spec in args.hosts.split(","):
        host = testinfra.get_host(spec)
        manifest_file = host.file(MANIFEST)
        manifest = json.loads(manifest_file.content_string) if manifest_file.exists else {}
        api = HostApi(host, args.api_url or manifest.get("api_url") or DEFAULT_API)
        models = args.model or manifest.get("models") or _all_models(api)
        gpu = args.gpu or gpu_name_on(_testinfra_run(host))
        topology = args.topology or manifest.get("topology") or "native"
        results.append(
            bench_host(
                api, spec, topology, gpu, models, args.runs, args.num_predict,
                args.bandwidth_gb_s, _progress,
            )
        )  # fmt: skip
    return results


def bench_url(args: argparse.Namespace) -> list[HostResult]:
    """--api-url alone: the API from this machine, the GPU from --gpu or local nvidia-smi."""
    api = UrlApi(args.api_url)
    models = args.model or _all_models(api)
    gpu = args.gpu or gpu_name_on(_local_run)
    return [
        bench_host(
            api, args.api_url, args.topology or "native", gpu, models, args.runs,
            args.num_predict, args.bandwidth_gb_s, _progress,
        )
    ]  # fmt: skip


def _all_models(api: Api) -> list[str]:
    return sorted(m["name"] for m in api.get("/api/tags").get("models", []))


def _progress(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--hosts", help="testinfra host specs, comma-separated")
    source.add_argument("--results", nargs="+", type=Path, help="earlier result JSON files")
    parser.add_argument(
        "--api-url",
        help=f"Ollama API; alone: called from here (with --hosts: on the host;"
        f" default the manifest's, else {DEFAULT_API})",
    )
    parser.add_argument("--model", action="append", help="model to time (default: the host's)")
    parser.add_argument("--gpu", help="GPU name for the ceiling (default: nvidia-smi's)")
    parser.add_argument("--bandwidth-gb-s", type=float, help="override the table's bandwidth")
    parser.add_argument("--topology", help="label (default: the manifest's topology)")
    parser.add_argument("--runs", type=int, default=5, help="timed runs per model (median)")
    parser.add_argument("--num-predict", type=int, default=128, help="tokens to decode per run")
    parser.add_argument("--out", type=Path, default=Path("build/bench/decode"), help="file stem")
    parser.add_argument("--no-chart", action="store_true", help="skip the PNG")
    args = parser.parse_args(argv)
    try:
        if args.results:
            results = load_results(args.results)
        elif args.hosts:
            results = bench_hosts(args)
        elif args.api_url:
            results = bench_url(args)
        else:
            parser.error("give --hosts, --api-url or --results")
        if not results or not any(r.models for r in results):
            raise BenchError("no models to time: pull some, or name them with --model")
    except (BenchError, OSError, ValueError) as exc:
        print(f"bench.decode: {exc}", file=sys.stderr)
        return 1
    return report(results, args.out, chart=not args.no_chart)


def report(results: Sequence[HostResult], out: Path, chart: bool = True) -> int:
    print(table(results))
    out.parent.mkdir(parents=True, exist_ok=True)
    json_path = out.with_suffix(".json")
    json_path.write_text(json.dumps(to_json(results), indent=2) + "\n")
    print(f"\nwrote {json_path}")
    if chart:
        try:
            print(f"wrote {write_chart(results, out.with_suffix('.png'))}")
        except ImportError:
            print("no chart: matplotlib is not installed (pip install -r requirements-bench.txt)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
