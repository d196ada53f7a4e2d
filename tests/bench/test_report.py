"""The benchmarks' results protocol (bench/report.py) and the page written from it
(bench/benchmarks_page.py): what a reader of docs/benchmarks.md is told."""

import json

import pytest

from bench import benchmarks_page, report

MACHINE = {
    "cores": 2,
    "cpu": "AMD EPYC 7B13",
    "memory": "23.4 GiB",
    "python": "3.11.2",
    "postgresql": "15.5",
    "redis": "7.0.11",
    "mosquitto": "2.0.11",
}


@pytest.fixture(autouse=True)
def _no_size_left_over():
    report.size()
    yield
    report.size()


STARTED = "2026-12-07T19:00:00+00:00"


def run_line(started=STARTED, **machine):
    return {"kind": "run", "started": started, "machine": {**MACHINE, **machine}}


def script_line(name="registry", status=0, expects=(), mode="full", run=STARTED):
    return {
        "kind": "script",
        "run": run,
        "mode": mode,
        "name": name,
        "title": f"The {name} bench",
        "script": f"bench/{name}.py",
        "command": [f"bench/{name}.py", "--devices", "1000000"],
        "status": status,
        "seconds": 75.2,
        "expects": list(expects),
    }


def figure_line(name, value, unit="ms", bench="registry", **fields):
    better = fields.pop("better", report.BETTER_BY_UNIT.get(unit))
    return {
        "kind": "figure",
        "bench": bench,
        "name": name,
        "value": value,
        "unit": unit,
        "better": better,
        "size": {"devices": 1_000_000},
        **fields,
    }


def page(*lines):
    return benchmarks_page.render([run_line(), *lines])


def row(text: str, figure: str) -> str:
    """The figure's table row, its ratios written with an x."""
    (found,) = [line for line in text.splitlines() if line.startswith(f"| {figure}")]
    return found.replace(benchmarks_page.TIMES, "x")


# --- recording ---------------------------------------------------------------------------------


def test_a_figure_recorded_under_make_bench_becomes_a_json_line(tmp_path, monkeypatch):
    results = tmp_path / "results.jsonl"
    monkeypatch.setenv(report.RESULTS_ENV, str(results))
    monkeypatch.setenv(report.NAME_ENV, "registry")
    report.size(devices=1000, samples=10)
    report.record("first page: p95", 28.4, "ms", target=300, baseline="stock", baseline_value=184)
    report.record("deep page: p95", 9.1, "ms", deep_page_rows=500)

    first, deep = report.read(results)
    assert first["bench"] == "registry"
    assert first["value"] == 28.4 and first["target"] == 300 and first["better"] == "lower"
    assert first["baseline"] == "stock" and first["baseline_value"] == 184
    assert first["size"] == {"devices": 1000, "samples": 10}
    assert deep["size"] == {"devices": 1000, "samples": 10, "deep_page_rows": 500}


def test_a_script_run_by_hand_records_nothing(tmp_path, monkeypatch):
    monkeypatch.delenv(report.RESULTS_ENV, raising=False)
    monkeypatch.chdir(tmp_path)
    figure = report.record("sweep", 767.0, "ms", target=2000)
    assert figure.meets_target() is True
    assert list(tmp_path.iterdir()) == []


def test_a_value_that_could_not_be_measured_is_recorded_as_missing(tmp_path, monkeypatch):
    results = tmp_path / "results.jsonl"
    monkeypatch.setenv(report.RESULTS_ENV, str(results))
    report.record("steady 1,000/s: p99", float("nan"), "ms", target=50)
    (line,) = report.read(results)
    assert line["value"] is None
    assert report.figure_from(line).meets_target() is None


def test_a_unit_that_does_not_say_which_way_is_better_must_be_told():
    with pytest.raises(ValueError, match="which way is better"):
        report.record("pacing: off the rate", 1.7, "%", target=2)
    assert report.record("pacing: off the rate", 1.7, "%", better=report.LOWER, target=2)


def test_a_results_file_with_a_broken_line_names_the_line(tmp_path):
    results = tmp_path / "results.jsonl"
    results.write_text(json.dumps(run_line()) + "\n{not json\n")
    with pytest.raises(ValueError, match=r"results\.jsonl:2"):
        report.read(results)


# --- the page --------------------------------------------------------------------------------


def test_the_page_says_it_is_generated_by_which_command_when_and_on_what():
    text = page(script_line(), script_line("flood"))
    assert text.startswith("# Benchmarks\n")
    assert (
        "Generated** by `make bench` from the figures its scripts recorded on 2026-12-07 " in text
    )
    assert "Do not edit" in text
    assert "the scripts took 2 min 30 s in all" in text
    for shown in ("| cores | 2 |", "AMD EPYC 7B13", "23.4 GiB", "| PostgreSQL | 15.5 |"):
        assert shown in text
    assert "| Redis | 7.0.11 |" in text and "| Mosquitto | 2.0.11 |" in text
    assert "(benchmarks-notes.md)" in text and "(scaling.md)" in text


def test_a_slower_stock_page_reads_as_a_ratio_above_one_and_a_met_target():
    text = page(
        script_line(),
        figure_line(
            "admin changelist: p95",
            29.8,
            target=300,
            ratio_target=5,
            baseline="stock defaults, p95",
            baseline_value=184.1,
        ),
    )
    assert row(text, "admin changelist: p95") == (
        "| admin changelist: p95 | 29.8 ms | ≤ 300 ms, ≥ 5x the baseline "
        "| stock defaults, p95: 184 ms | 6.2x | met |"
    )


def test_a_rate_under_its_target_is_not_met_and_its_ratio_is_a_share_of_the_ceiling():
    text = page(
        script_line("jobs-protocol"),
        figure_line(
            "1 bridge: updates/s",
            1850.0,
            unit="/s",
            bench="jobs-protocol",
            target=2000,
            baseline="relay: updates/s",
            baseline_value=5716.0,
        ),
    )
    assert row(text, "1 bridge: updates/s") == (
        "| 1 bridge: updates/s | 1,850/s | ≥ 2,000/s | relay: updates/s: 5,716/s | 0.32x "
        "| **not met** |"
    )
    assert "**0 targets met**, 1 not met; 0 expected figures missing." in text


def test_a_target_on_the_ratio_alone_fails_when_the_baseline_pulls_ahead():
    text = page(
        script_line("console-fanout"),
        figure_line(
            "accepted with pages open",
            900.0,
            unit="/s",
            bench="console-fanout",
            ratio_target=0.95,
            baseline="without pages",
            baseline_value=1000.0,
        ),
    )
    assert row(text, "accepted with pages open").endswith("| 0.90x | **not met** |")


def test_an_expected_figure_that_was_not_recorded_is_shown_missing_not_invented():
    text = page(
        script_line(
            "rollouts", status=1, expects=["dry-run preview (median of 3)", "start: seconds"]
        ),
        figure_line("dry-run preview (median of 3)", 1.33, unit="s", bench="rollouts", target=2),
    )
    assert row(text, "dry-run preview (median of 3)").endswith("| met |")
    assert row(text, "start: seconds") == "| start: seconds | missing | — | — | — | **missing** |"
    assert "**exited with status 1**" in text
    assert "**1 targets met**, 0 not met; 1 expected figures missing." in text


def test_a_bench_that_recorded_nothing_says_so():
    text = page(script_line("soak", status=2))
    assert "| (no figure recorded) | missing |" in text
    assert "exited with status 2" in text


def test_at_quick_sizes_every_verdict_says_so():
    text = page(
        script_line("presence", mode="quick"),
        figure_line("heartbeat sweep", 120.0, bench="presence", target=2000),
    )
    assert "at **quick sizes**" in text
    assert "`bench/presence.py --devices 1000000`, quick size, measured 2026-12-07" in text
    assert row(text, "heartbeat sweep").endswith("| met (quick size) |")


def test_the_size_common_to_a_bench_heads_its_section_and_the_rest_follows_each_figure():
    text = page(
        script_line(),
        figure_line("first page: p95", 10.0, size={"devices": 1000, "samples": 10}),
        figure_line("deep page: p95", 9.0, size={"devices": 1000, "samples": 10, "deep": 500}),
    )
    assert "size: devices 1,000, samples 10." in text
    assert "| deep page: p95 (deep 500) | 9.00 ms |" in text


def test_sections_measured_again_later_say_when_and_the_header_gives_the_span():
    later = "2026-12-08T09:30:00+00:00"
    text = benchmarks_page.render(
        [
            run_line(),
            run_line(later),
            script_line("registry"),
            script_line("flood", run=later),
        ]
    )
    assert "recorded in 2 runs, from 2026-12-07 19:00 UTC to 2026-12-08 09:30 UTC" in text
    assert "full size, measured 2026-12-08 09:30 UTC" in text
    assert "different machines" not in text


def test_sections_from_another_machine_are_flagged():
    later = "2026-12-08T09:30:00+00:00"
    text = benchmarks_page.render(
        [run_line(), run_line(later, cores=8), script_line(), script_line("flood", run=later)]
    )
    assert "| cores | 8 |" in text
    assert "**The sections were measured on different machines**" in text


def test_any_rate_is_better_higher_without_being_told():
    assert report.record("import things", 250.0, "things/s", target=100)
