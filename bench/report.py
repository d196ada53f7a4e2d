"""The benchmarks' figures as data, beside the tables they print.

A script records each figure it measured with `record`: its name, value and unit, which way is
better, the target it is held to (on the value, and/or on the ratio to the baseline), the
baseline measured in the same run and its value, and the size it ran at. `make bench`
(bench/run_all.py) sets BENCH_RESULTS to a file and BENCH_NAME to the suite entry, and each
figure becomes one JSON line in that file; docs/benchmarks.md is written from those lines
(bench/benchmarks_page.py). Run by hand without BENCH_RESULTS, a script records nothing and
prints its table as before.

The ratio always reads "how many times better than the baseline": baseline / value when lower
is better (a stock page 6 times slower: 6x), value / baseline when higher is better (a bridge at
40 % of the relay's rate: 0.4x).
"""

import json
import math
import os
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

RESULTS_ENV = "BENCH_RESULTS"
NAME_ENV = "BENCH_NAME"
LOWER, HIGHER = "lower", "higher"
# Which way is better when a unit says it (any rate, "things/s", is higher); anything else must
# say `better=`.
BETTER_BY_UNIT = {"ms": LOWER, "s": LOWER, "/s": HIGHER}

_size: dict[str, Any] = {}


@dataclass(frozen=True)
class Figure:
    """One measured figure, as recorded."""

    bench: str
    name: str
    value: float | None
    unit: str
    better: str
    target: float | None = None
    ratio_target: float | None = None
    baseline: str | None = None
    baseline_value: float | None = None
    size: dict[str, Any] = field(default_factory=dict)
    note: str = ""

    @property
    def ratio(self) -> float | None:
        """Times better than the baseline (> 1: better), None without both values."""
        if self.value is None or self.baseline_value is None:
            return None
        if self.better == LOWER:
            return self.baseline_value / self.value if self.value else None
        return self.value / self.baseline_value if self.baseline_value else None

    @property
    def has_target(self) -> bool:
        return self.target is not None or self.ratio_target is not None

    def meets_target(self) -> bool | None:
        """True or False against every target it has; None when it has none or is missing."""
        if not self.has_target or self.value is None:
            return None
        met = True
        if self.target is not None:
            met &= self.value <= self.target if self.better == LOWER else self.value >= self.target
        if self.ratio_target is not None:
            ratio = self.ratio
            met &= ratio is not None and ratio >= self.ratio_target
        return met


def size(**dimensions: Any) -> None:
    """The size the figures recorded next ran at (devices, samples, seconds …)."""
    _size.clear()
    _size.update(dimensions)


def record(
    name: str,
    value: float | None,
    unit: str,
    *,
    better: str | None = None,
    target: float | None = None,
    ratio_target: float | None = None,
    baseline: str | None = None,
    baseline_value: float | None = None,
    note: str = "",
    **extra_size: Any,
) -> Figure:
    """Record one figure (and return it). A value that could not be measured is None (a NaN
    counts as None): the page shows it missing rather than a number nobody measured."""
    better = better or BETTER_BY_UNIT.get(unit) or (HIGHER if unit.endswith("/s") else None)
    if better not in (LOWER, HIGHER):
        raise ValueError(f"say which way is better for {name!r} ({unit!r}): better=LOWER/HIGHER")
    figure = Figure(
        bench=os.environ.get(NAME_ENV) or Path(sys.argv[0]).stem,
        name=name,
        value=_number(value),
        unit=unit,
        better=better,
        target=target,
        ratio_target=ratio_target,
        baseline=baseline,
        baseline_value=_number(baseline_value),
        size={**_size, **extra_size},
        note=note,
    )
    path = os.environ.get(RESULTS_ENV)
    if path:
        append(Path(path), {"kind": "figure", **asdict(figure)})
    return figure


def append(path: Path, line: dict[str, Any]) -> None:
    with path.open("a", encoding="utf-8") as results:
        results.write(json.dumps(line, ensure_ascii=False) + "\n")


def read(path: Path) -> list[dict[str, Any]]:
    """Every line of a results file, in order; a line that is not JSON is an error naming it."""
    lines = []
    for number, text in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not text.strip():
            continue
        try:
            lines.append(json.loads(text))
        except json.JSONDecodeError as error:
            raise ValueError(f"{path}:{number}: not a JSON line ({error})") from error
    return lines


def figure_from(line: dict[str, Any]) -> Figure:
    fields = {k: v for k, v in line.items() if k in Figure.__dataclass_fields__}
    return Figure(**fields)


def _number(value: float | None) -> float | None:
    if value is None:
        return None
    value = float(value)
    return None if math.isnan(value) or math.isinf(value) else value
