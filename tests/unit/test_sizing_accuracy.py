"""bench.sizing_accuracy: it runs on the recorded observations, and its arithmetic is right.

No accuracy figure is asserted: the data measure the estimator, the test measures the bench.
"""

from __future__ import annotations

import json
import math
from dataclasses import replace
from pathlib import Path

import pytest

from bench.sizing_accuracy import (
    DATA,
    Observation,
    evaluate,
    load_observations,
    main,
    processor_class,
    summarize,
)
from sizing.units import GIB


def test_runs_on_the_recorded_observations(capsys: pytest.CaptureFixture[str]) -> None:
    observations = load_observations(sorted(DATA.glob("*.yaml")))
    assert len(observations) >= 10
    assert len({o.id for o in observations}) == len(observations)
    assert all(o.source.startswith("https://") for o in observations)
    summary = summarize([evaluate(o) for o in observations])
    assert summary.observations == len(observations)
    assert math.isfinite(summary.median_abs_error)
    assert main(["--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert len(data["results"]) == len(observations)
    assert set(data["summary"]) >= {"median_abs_error", "class_hits", "class_scored"}


def test_text_report_names_both_figures(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 0
    out = capsys.readouterr().out
    assert "median absolute relative error of the estimated total: " in out
    assert "PROCESSOR class hit rate: " in out


def _base(**changes: object) -> Observation:
    obs = Observation(
        id="x",
        source="https://example.invalid",
        model="llama3.2:1b",
        context=4096,
        size_bytes=1,
        processor="100% GPU",
    )
    return replace(obs, **changes)  # type: ignore[arg-type]


def test_error_median_and_hit_rate_arithmetic() -> None:
    fits = _base(id="fits", vram_free_bytes=80 * GIB)
    tight = _base(id="tight", vram_free_bytes=2 * GIB)
    blind = _base(id="blind")
    est = {o.id: evaluate(o).estimated_bytes for o in (fits, tight, blind)}
    results = [
        evaluate(replace(fits, size_bytes=est["fits"])),  # error 0, predicted gpu: a hit
        evaluate(replace(tight, size_bytes=est["tight"] // 2)),  # error ~ +1.0, predicted split
        evaluate(replace(blind, size_bytes=est["blind"] * 4)),  # error -0.75, not scored
    ]
    assert [r.relative_error for r in results] == pytest.approx([0.0, 1.0, -0.75], abs=1e-9)
    assert [r.class_hit for r in results] == [True, False, None]
    assert results[1].predicted_class == "split"
    summary = summarize(results)
    assert summary.median_abs_error == pytest.approx(0.75, abs=1e-9)
    assert (summary.class_scored, summary.class_hits, summary.class_hit_rate) == (2, 1, 0.5)


def test_an_observation_gives_its_own_weights() -> None:
    catalog = evaluate(_base())
    own = evaluate(_base(weights_bytes=catalog.estimated_bytes))
    assert own.estimated_bytes > catalog.estimated_bytes


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("100% GPU", "gpu"),
        ("100% CPU", "cpu"),
        ("13%/87% CPU/GPU", "split"),
        ("4%/96%  CPU/GPU", "split"),
    ],
)
def test_processor_class(text: str, expected: str) -> None:
    assert processor_class(text) == expected


def test_processor_class_rejects_other_text() -> None:
    with pytest.raises(ValueError):
        processor_class("Unknown")


def test_bad_rows_are_named(tmp_path: Path) -> None:
    data = tmp_path / "bad.yaml"
    data.write_text("observations:\n  - {id: broken, source: s, model: llama3.2:1b, size: 1}\n")
    with pytest.raises(ValueError, match="broken"):
        load_observations([data])
    unknown = _base(model="no-such-model:1b")
    with pytest.raises(ValueError, match="not in sizing/catalog.yaml"):
        evaluate(unknown)


def test_main_reports_a_bad_file_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = tmp_path / "bad.yaml"
    data.write_text("observations:\n  - {id: broken}\n")
    assert main(["--data", str(data)]) == 1
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "broken" in err
