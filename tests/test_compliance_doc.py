"""docs/compliance.md sends auditors to code and tests: every file, function and test it names must
exist, so the page cannot rot silently when code moves (issue 16, item 7)."""

import ast
import re
from functools import cache
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PAGE = ROOT / "docs" / "compliance.md"
SECURITY = ROOT / "SECURITY.md"

# Code spans naming a repository file, optionally `path::name` (a function or class in it, or
# `Class.method`). Spans like `devices/<id>/…` (topics) or `/api/schema/` (URLs) do not match.
REFERENCE = re.compile(r"`([A-Za-z0-9_.-]+(?:/[A-Za-z0-9_.-]+)*)(?:::([A-Za-z_][\w.]*))?`")
TOP_DIRECTORIES = {
    "bench",
    "bin",
    "deploy",
    "devices",
    "docs",
    "firmware",
    "fleetportal",
    "monitoring",
    "mosquitto",
    "shadows",
    "templates",
    "tests",
}
ROOT_FILES = {"Makefile", "README.md", "SECURITY.md", "requirements.txt", "requirements-dev.txt"}
LINK = re.compile(r"\]\(([^)\s]+)\)")

EN_303_645 = [f"### 5.{n} " for n in range(1, 14)] + ["## ETSI EN 303 645, clause 6"]
NIST_8259A = [
    "### Device identification",
    "### Device configuration",
    "### Data protection",
    "### Logical access to interfaces",
    "### Software update",
    "### Cybersecurity state awareness",
]


def references(text: str) -> list[tuple[str, str]]:
    """(path, name or "") for each code span that names a file of the repository."""
    found = []
    for path, name in REFERENCE.findall(text):
        if path in ROOT_FILES or ("/" in path and path.split("/")[0] in TOP_DIRECTORIES):
            found.append((path, name))
    return found


@cache
def python_names(path: Path) -> frozenset[str]:
    """Top-level functions, classes and assignments, and `Class.method` for methods."""
    names = set()
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            names.add(node.name)
        elif isinstance(node, ast.ClassDef):
            names.add(node.name)
            names.update(
                f"{node.name}.{item.name}"
                for item in node.body
                if isinstance(item, ast.FunctionDef | ast.AsyncFunctionDef)
            )
        elif isinstance(node, ast.Assign):
            names.update(t.id for t in node.targets if isinstance(t, ast.Name))
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            names.add(node.target.id)
    return frozenset(names)


def problem(path: str, name: str) -> str | None:
    """Why `path::name` points nowhere, or None when it points at something real."""
    file = ROOT / path
    if not file.is_file():
        return f"{path}: no such file"
    if not name:
        return None
    if path.startswith("tests/"):
        if not name.startswith("test_") or name not in python_names(file):
            return f"{path}::{name}: no such test"
    elif file.suffix == ".py":
        if name not in python_names(file):
            return f"{path}::{name}: no such function, class or name"
    elif not re.search(rf"\b{re.escape(name)}\b", file.read_text()):
        return f"{path}::{name}: not in the file"
    return None


def problems(text: str) -> list[str]:
    return [p for path, name in references(text) if (p := problem(path, name))]


def sections(text: str) -> dict[str, str]:
    """Each `###` section's heading and body (the `##` clause 6 counts as one)."""
    parts = re.split(r"^(#{2,3} .+)$", text, flags=re.MULTILINE)
    return {parts[i]: parts[i + 1] for i in range(1, len(parts) - 1, 2)}


def anchor(heading: str) -> str:
    """GitHub's anchor for a heading."""
    words = re.sub(r"[^\w\- ]", "", heading.strip("# ").lower())
    return words.replace(" ", "-")


def test_every_file_function_and_test_the_page_names_exists():
    text = PAGE.read_text()
    assert len(references(text)) > 200  # the check has something to check
    assert problems(text) == []


def test_the_check_catches_a_moved_file_a_renamed_function_and_a_deleted_test():
    text = (
        "`devices/credentials.py::revoke_credentials` `fleetportal/gone.py` "
        "`devices/credentials.py::revoke_everything` `tests/test_broker.py::test_never_written` "
        "`tests/test_broker.py::broker` `mosquitto/fleetportal_claims.c::no_such_hook` "
        "`devices/<id>/certificates/expiring`"
    )
    assert problems(text) == [
        "fleetportal/gone.py: no such file",
        "devices/credentials.py::revoke_everything: no such function, class or name",
        "tests/test_broker.py::test_never_written: no such test",
        "tests/test_broker.py::broker: no such test",
        "mosquitto/fleetportal_claims.c::no_such_hook: not in the file",
    ]


def test_every_provision_and_capability_has_its_section_and_a_test():
    found = sections(PAGE.read_text())
    for heading in EN_303_645 + NIST_8259A:
        matches = [body for title, body in found.items() if title.startswith(heading)]
        assert matches, f"no section {heading!r}"
        tests = [path for path, name in references(matches[0]) if path.startswith("tests/")]
        assert tests, f"{heading!r} names no test"


def test_links_on_the_page_lead_somewhere():
    text = PAGE.read_text()
    anchors = {anchor(title) for title in sections(text)}
    for target in LINK.findall(text):
        if target.startswith("#"):
            assert target[1:] in anchors, target
        elif not target.startswith("http"):
            assert (PAGE.parent / target).resolve().is_file(), target


def test_the_security_policy_says_how_to_report_privately():
    policy = SECURITY.read_text()
    assert "Report a vulnerability" in policy
    assert "never in a public issue" in policy
    readme = (ROOT / "README.md").read_text()
    assert "(SECURITY.md)" in readme
    assert "(docs/compliance.md)" in readme
