"""`make bench` runs every benchmark there is (bench/suite.py), each in its own scratch
database, and keeps what each script recorded and how it ended (bench/run_all.py)."""

import ast
from pathlib import Path

import pytest

from bench import report, run_all
from bench.suite import SUITE, Bench, by_name

ROOT = Path(__file__).resolve().parent.parent.parent
# The runner itself, and the connections bench's load-generator processes.
NOT_BENCHMARKS = {"bench/run_all.py", "bench/connection_load.py"}


def measuring_scripts() -> set[str]:
    """Every bench/*.py that runs as a script (has a __main__ block), but the runner."""
    scripts = set()
    for path in sorted((ROOT / "bench").glob("*.py")):
        tree = ast.parse(path.read_text())
        for node in tree.body:
            if isinstance(node, ast.If) and "__main__" in ast.unparse(node.test):
                scripts.add(f"bench/{path.name}")
    return scripts - NOT_BENCHMARKS


def test_every_bench_script_that_measures_is_in_make_bench():
    listed = {bench.script for bench in SUITE}
    assert measuring_scripts(), "no bench script found: the test looks in the wrong place"
    assert measuring_scripts() - listed == set(), "add them to bench/suite.py"


def test_every_listed_script_exists_and_records_its_figures():
    for bench in SUITE:
        source = (ROOT / bench.script).read_text()
        assert "report.record(" in source, f"{bench.script} records no figure (bench/report.py)"


def test_each_entry_has_a_name_of_its_own_and_a_quick_size_below_the_full_one():
    names = [bench.name for bench in SUITE]
    assert len(names) == len(set(names))
    for bench in SUITE:
        assert bench.quick != bench.full, bench.name
        assert bench.arguments(full=False)[0] == bench.script


def test_an_unknown_entry_is_refused_with_the_known_names():
    with pytest.raises(ValueError, match=r"no such bench: sauna .known: .*registry"):
        by_name(["registry", "sauna"])
    assert [b.name for b in by_name(["telemetry-query", "registry"])] == [
        "registry",
        "telemetry-query",
    ]


def test_each_entry_gets_a_scratch_database_named_for_the_run_size_and_its_data():
    bench = Bench("registry", "", "bench/registry.py", database="fleet")
    base = "postgres://postgres@127.0.0.1:5432/fp_bench?sslmode=disable"
    assert run_all.database_for(base, bench, full=False) == (
        "postgres://postgres@127.0.0.1:5432/fp_bench_quick_fleet?sslmode=disable"
    )
    full = run_all.database_for(base, bench, full=True)
    assert full.endswith("/fp_bench_full_fleet?sslmode=disable")


def test_a_script_run_by_the_suite_records_under_its_entry_and_its_end_is_kept(
    tmp_path, monkeypatch
):
    script = tmp_path / "fake_bench.py"
    script.write_text(
        f"import sys\nsys.path.insert(0, {str(ROOT)!r})\n"
        "import os\n"
        "from bench import report\n"
        "report.record('database', 1.0, 'ms', note=os.environ['BENCH_DATABASE_URL'])\n"
        "print('| a table |')\n"
        "sys.exit(3)\n"
    )
    monkeypatch.setattr(run_all, "OUTPUT", tmp_path)
    monkeypatch.setattr(run_all, "ROOT", tmp_path)
    results = tmp_path / "results.jsonl"
    bench = Bench("fake", "A fake bench", str(script), quick="--x 1", expects=("database",))

    line = run_all.run_one(bench, False, results, "postgres://h/fp")

    assert line["status"] == 3 and line["expects"] == ["database"]
    assert line["command"] == [str(script), "--x", "1"]
    (figure,) = report.read(results)
    assert figure["bench"] == "fake" and figure["note"] == "postgres://h/fp_quick"
    assert (tmp_path / "fake.log").read_text() == "| a table |\n"


def test_running_one_entry_again_replaces_its_figures_and_keeps_the_others():
    def lines(run: str, *names: str) -> list[dict]:
        out = [{"kind": "run", "started": run, "machine": {}}]
        for name in names:
            out.append({"kind": "figure", "bench": name, "name": f"{name} figure", "run": run})
            out.append({"kind": "script", "name": name, "run": run})
        return out

    first, second, third = "2026-12-07T19:00", "2026-12-07T20:00", "2026-12-07T21:00"
    kept = run_all.merge(lines(first, "flood", "registry"), lines(second, "flood"))
    kept = run_all.merge(kept, lines(third, "flood"))

    assert [
        (line["kind"], line.get("started") or line.get("bench") or line["name"]) for line in kept
    ] == [
        ("run", first),
        ("run", third),
        ("figure", "registry"),
        ("script", "registry"),
        ("figure", "flood"),
        ("script", "flood"),
    ]
    assert [line["run"] for line in kept if line["kind"] == "script"] == [first, third]


def test_the_page_lists_an_entry_never_run_as_not_run_with_its_figures_missing(tmp_path):
    started = "2026-12-07T19:00:00+00:00"
    lines = [
        {"kind": "run", "started": started, "machine": {}},
        {"kind": "script", "name": "registry", "title": "Registry", "script": "bench/registry.py"}
        | {"command": ["bench/registry.py"], "status": 0, "seconds": 5.0, "expects": []}
        | {"run": started, "mode": "quick"},
    ]
    page = tmp_path / "benchmarks.md"

    run_all.write(lines, tmp_path / "kept.jsonl", page)

    text = page.read_text()
    flood = next(bench for bench in SUITE if bench.name == "flood")
    assert f"`{' '.join(flood.arguments(False))}`: **not run yet**." in text
    assert f"| {flood.expects[0]} | missing |" in text
    assert text.index('## <a id="bench-registry">') < text.index('## <a id="bench-flood">')
    assert report.read(tmp_path / "kept.jsonl") == lines  # the results keep only what ran
