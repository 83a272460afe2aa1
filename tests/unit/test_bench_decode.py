"""bench.decode's arithmetic, table, JSON and chart on recorded generate responses.

Fixtures: bench/fixtures/generate (SOURCES.md there names where each response came from).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from bench import decode
from bench.decode import BenchError, HostResult, summarize, timing_of

FIXTURES = Path(__file__).resolve().parents[2] / "bench" / "fixtures" / "generate"
RTX_3090 = 936e9  # bytes/s, sizing/bandwidth.py (FACTS.md section 4)
STANDIN_WEIGHTS = 2491876879  # /api/tags size of phi4-mini:3.8b in the stand-in


def response(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((FIXTURES / f"{name}.json").read_text())
    return data


def test_decode_and_prompt_rates_of_the_docs_example() -> None:
    timing = timing_of(response("ollama-docs-stream-final"))
    # 259 tokens in 4.23271 s, 26 prompt tokens in 0.130079 s (Ollama docs/api.md).
    assert timing.decode_tok_s == pytest.approx(61.19, abs=0.01)
    assert timing.prompt_tok_s == pytest.approx(199.88, abs=0.01)


def test_a_load_only_response_has_no_timings() -> None:
    with pytest.raises(BenchError, match="no eval_count"):
        timing_of(response("ollama-docs-load"))


def test_a_streamed_partial_object_is_refused() -> None:
    with pytest.raises(BenchError, match="not the final object"):
        timing_of({"model": "x", "response": "The", "done": False})


def test_a_cached_prompt_gives_no_prompt_rate() -> None:
    partial = {**response("ollama-docs-no-stream"), "prompt_eval_count": 0}
    del partial["prompt_eval_duration"]
    assert timing_of(partial).prompt_tok_s is None


def test_summary_takes_medians_and_divides_by_the_ceiling() -> None:
    runs = [response(n) for n in ("ollama-docs-stream-final", "ollama-docs-no-stream")]
    runs.append(response("ollama-docs-stream-final"))
    result = summarize("llama3.2", runs, 2_019_393_189, RTX_3090, "/api/tags size")
    assert result.runs == 3
    assert result.decode_tok_s == pytest.approx(259 / 4.23271)  # the middle of 61.2, 55.3, 61.2
    assert result.prompt_tok_s == pytest.approx(26 / 0.130079)
    assert result.ceiling_tok_s == pytest.approx(936e9 / 2_019_393_189)  # 463.5 tok/s
    assert result.ratio == pytest.approx((259 / 4.23271) / (936e9 / 2_019_393_189))


def test_stand_in_on_the_gpu_runs_at_its_simulated_900_of_936_gb_s() -> None:
    result = summarize(
        "phi4-mini:3.8b", [response("standin-phi4-mini-gpu")], STANDIN_WEIGHTS, RTX_3090
    )
    assert result.ratio == pytest.approx(900 / 936, rel=1e-3)


def test_without_a_known_gpu_there_is_no_ceiling() -> None:
    result = summarize("llama3.2", [response("ollama-docs-no-stream")], 2_019_393_189, None)
    assert result.decode_tok_s == pytest.approx(237 / 4.289432)
    assert result.ceiling_tok_s is None and result.ratio is None


def test_bytes_per_token_prefers_the_hosts_file_size_and_falls_back_to_the_catalog() -> None:
    assert decode.bytes_per_token("phi4-mini:3.8b", 123) == (123, "/api/tags size")
    from_catalog, source = decode.bytes_per_token("qwen2.5-coder:7b", None)
    assert from_catalog and source == "catalog qwen2.5-coder:7b"
    assert decode.bytes_per_token("no-such-model:1b", None) == (None, "unknown")


def host(topology: str, fixture: str, gpu: str = "NVIDIA GeForce RTX 3090") -> HostResult:
    result = HostResult("docker://x", topology, gpu, 936, "FACTS.md section 4", 16)
    result.models.append(
        summarize("phi4-mini:3.8b", [response(fixture)], STANDIN_WEIGHTS, RTX_3090, "tags")
    )
    return result


def test_overhead_is_relative_to_native_on_the_same_box() -> None:
    results = [host("native", "standin-phi4-mini-gpu"), host("docker", "standin-phi4-mini-split")]
    (row,) = decode.overhead_rows(results)
    native, other = 25 / 0.069218786, 25 / 0.743318701
    assert row["topology"] == "docker"
    assert row["overhead_pct"] == pytest.approx((native - other) / native * 100)
    assert decode.same_box_warning(results) is None
    text = decode.table(results)
    assert "overhead vs native" in text and "90.7%" in text


def test_results_from_different_gpus_are_flagged() -> None:
    results = [host("native", "standin-phi4-mini-gpu"), host("lxc", "standin-phi4-mini-gpu", "x")]
    assert "different GPUs" in (decode.same_box_warning(results) or "")


def test_json_round_trips_through_results_files(tmp_path: Path) -> None:
    results = [host("native", "standin-phi4-mini-gpu"), host("kvm", "standin-phi4-mini-split")]
    path = tmp_path / "r.json"
    path.write_text(json.dumps(decode.to_json(results)))
    assert decode.load_results([path]) == results
    path.write_text("{}")
    with pytest.raises(BenchError, match="not a bench.decode result file"):
        decode.load_results([path])


def test_main_with_results_writes_table_json_and_chart(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pytest.importorskip(
        "matplotlib", reason="optional extra: pip install -r requirements-bench.txt"
    )
    path = tmp_path / "in.json"
    path.write_text(json.dumps(decode.to_json([host("native", "standin-phi4-mini-gpu")])))
    assert decode.main(["--results", str(path), "--out", str(tmp_path / "out")]) == 0
    assert "phi4-mini:3.8b" in capsys.readouterr().out
    assert json.loads((tmp_path / "out.json").read_text())["results"]
    assert (tmp_path / "out.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_chart_has_a_bar_per_topology_and_the_ceiling(tmp_path: Path) -> None:
    pytest.importorskip(
        "matplotlib", reason="optional extra: pip install -r requirements-bench.txt"
    )
    results = [host("native", "standin-phi4-mini-gpu"), host("docker", "standin-phi4-mini-split")]
    png = decode.write_chart(results, tmp_path / "c.png")
    assert png.stat().st_size > 5000


def test_unreadable_results_file_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert decode.main(["--results", str(tmp_path / "missing.json")]) == 1
    err = capsys.readouterr().err
    assert err.startswith("bench.decode:") and "Traceback" not in err


def test_without_matplotlib_the_table_and_json_still_come_out(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(__import__("sys").modules, "matplotlib", None)  # import fails
    assert decode.report([host("native", "standin-phi4-mini-gpu")], tmp_path / "o") == 0
    assert "no chart: matplotlib is not installed" in capsys.readouterr().out
    assert (tmp_path / "o.json").exists() and not (tmp_path / "o.png").exists()


class RecordedApi:
    """Answers like a server whose model was recorded in standin-phi4-mini-gpu.json."""

    def __init__(self) -> None:
        self.generates = 0

    def get(self, path: str) -> Any:
        if path == "/api/tags":
            return {"models": [{"name": "phi4-mini:3.8b", "size": STANDIN_WEIGHTS}]}
        assert path == "/api/ps"
        size = 7055279073
        return {"models": [{"name": "phi4-mini:3.8b", "size": size, "size_vram": size}]}

    def post(self, path: str, body: dict[str, Any]) -> Any:
        assert path == "/api/generate" and body["stream"] is False and "num_ctx" not in body
        self.generates += 1
        return response("standin-phi4-mini-gpu")


def test_bench_host_warms_up_then_times_the_runs() -> None:
    api = RecordedApi()
    result = decode.bench_host(
        api, "local://", "native", "NVIDIA GeForce RTX 3090", ["phi4-mini:3.8b"], 3, 16
    )
    assert api.generates == 4  # one warm-up, three timed
    (model,) = result.models
    assert model.runs == 3 and model.processor == "100% GPU" and model.gpu_percent == 100
    assert model.bytes_per_token == STANDIN_WEIGHTS and result.bandwidth_gb_s == 936
    assert model.ratio == pytest.approx(900 / 936, rel=1e-3)


def test_gpu_name_comes_from_nvidia_smi_and_a_failure_gives_none() -> None:
    assert decode.gpu_name_on(lambda _: "NVIDIA H100 80GB HBM3\n") == "NVIDIA H100 80GB HBM3"
    assert decode.gpu_name_on(lambda _: None) is None
    failed = "NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver."
    assert decode.gpu_name_on(lambda _: failed) is None
