"""The architecture's rules, checked on the source (docs/architecture.md):

- imports run one way, `fleetportal <- devices <- shadows <- firmware <- monitoring <-
  aws_gateway`: an app never imports one above it (it offers an extension point instead);
- paho is imported by the bridge's transport only;
- MQTT topics are spelled in fleetportal/topics.py only; everyone else asks it for them;
- the device simulator (simulator/) is device code: it imports the standard library,
  `cryptography` and its own modules, nothing of the portal (it keeps its own topic names).

Each rule is a small function over source text, shown to catch a violation below.
"""

import ast
import re
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
LAYERS = {
    "fleetportal": 0,
    "devices": 1,
    "shadows": 2,
    "firmware": 3,
    "monitoring": 4,
    "aws_gateway": 5,
}
PAHO_HOME = "fleetportal/bridge/transport.py"
TOPICS_HOME = "fleetportal/topics.py"
SIMULATOR = "simulator"
SIMULATOR_MAY_IMPORT = {*sys.stdlib_module_names, "cryptography", SIMULATOR}
# A string that holds an MQTT topic: AWS's reserved topics and the broker's own anywhere in it
# (an ACL line, a log message), or one that starts like the portal's own topics: devices/<id>/…
# (URL routes, "devices/<str:…>/", are not topics) and the bridge's fleetportal/claim…, …/broker/….
TOPIC = re.compile(r"\$aws/|\$SYS/|\A(fleetportal/(claim|broker)|devices/(\+|#|[^/<\s]+/))")


def app_modules() -> list[Path]:
    return sorted(
        path
        for app in LAYERS
        if (ROOT / app).is_dir()
        for path in (ROOT / app).rglob("*.py")
        if "migrations" not in path.parts
    )


def imported_modules(tree: ast.AST) -> list[tuple[int, str]]:
    """(line, module) of every import, including those inside functions."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append((node.lineno, node.module))
    return found


def upward_imports(relative: str, source: str) -> list[str]:
    own = LAYERS[relative.split("/")[0]]
    return [
        f"{relative}:{line} imports {module}"
        for line, module in imported_modules(ast.parse(source))
        if LAYERS.get(module.split(".")[0], -1) > own
    ]


def simulator_imports(relative: str, source: str) -> list[str]:
    """What a simulator module imports beyond the standard library, cryptography and itself."""
    return [
        f"{relative}:{line} imports {module}"
        for line, module in imported_modules(ast.parse(source))
        if module.split(".")[0] not in SIMULATOR_MAY_IMPORT
    ]


def paho_imports(relative: str, source: str) -> list[str]:
    if relative == PAHO_HOME:
        return []
    return [
        f"{relative}:{line} imports {module}"
        for line, module in imported_modules(ast.parse(source))
        if module.split(".")[0] == "paho"
    ]


def topic_literals(relative: str, source: str) -> list[str]:
    if relative == TOPICS_HOME:
        return []
    tree = ast.parse(source)
    skip = {id(docstring) for docstring in docstrings(tree)}
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.JoinedStr):
            # An f-string reads as its text with X for each placeholder: f"devices/{d}/x".
            skip.update(id(part) for part in node.values)
            text = "".join(p.value if isinstance(p, ast.Constant) else "X" for p in node.values)
        elif (
            isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in skip
        ):
            text = node.value
        else:
            continue
        if TOPIC.search(text):
            found.append(f"{relative}:{node.lineno} spells the topic {text!r}")
    return found


def docstrings(tree: ast.AST) -> list[ast.Constant]:
    """Modules', classes' and functions' docstrings: prose may name a topic."""
    found = []
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if isinstance(body, list) and body and isinstance(body[0], ast.Expr):
            value = body[0].value
            if isinstance(value, ast.Constant) and isinstance(value.value, str):
                found.append(value)
    return found


def violations(rule) -> list[str]:
    found = []
    for path in app_modules():
        relative = path.relative_to(ROOT).as_posix()
        found += rule(relative, path.read_text())
    return found


@pytest.mark.parametrize("rule", [upward_imports, paho_imports, topic_literals])
def test_the_source_keeps_the_rule(rule):
    assert violations(rule) == []


def test_the_simulator_imports_nothing_of_the_portal():
    modules = sorted((ROOT / SIMULATOR).rglob("*.py"))
    assert modules, "no simulator package"
    found = []
    for path in modules:
        found += simulator_imports(path.relative_to(ROOT).as_posix(), path.read_text())
    assert found == []


# -- each rule catches what it is for --------------------------------------------------------


def test_an_app_importing_one_above_it_is_caught():
    assert upward_imports("devices/x.py", "from shadows.services import update\n") == [
        "devices/x.py:1 imports shadows.services"
    ]
    assert upward_imports("fleetportal/x.py", "def f():\n    import devices.models\n") == [
        "fleetportal/x.py:2 imports devices.models"
    ]
    assert upward_imports("shadows/x.py", "from devices import services\nimport orjson\n") == []


def test_a_simulator_module_importing_the_portal_is_caught():
    source = "import asyncio\nfrom cryptography import x509\nfrom simulator import mqtt\n"
    assert simulator_imports("simulator/x.py", source) == []
    for module in ("django.conf", "devices.models", "fleetportal.topics", "paho.mqtt.client"):
        assert simulator_imports("simulator/x.py", f"import {module}\n") == [
            f"simulator/x.py:1 imports {module}"
        ]


def test_paho_outside_the_transport_is_caught():
    assert paho_imports("shadows/x.py", "import paho.mqtt.client as mqtt\n") == [
        "shadows/x.py:1 imports paho.mqtt.client"
    ]
    assert paho_imports(PAHO_HOME, "import paho.mqtt.client as mqtt\n") == []


@pytest.mark.parametrize(
    "literal",
    [
        '"$aws/things/%u/shadow/update"',
        'f"$aws/things/{thing}/jobs/notify"',
        'f"devices/{device_id}/telemetry"',
        '"devices/+/presence"',
        '"$SYS/broker/log/N"',
    ],
)
def test_a_topic_spelled_outside_topics_py_is_caught(literal):
    assert len(topic_literals("shadows/x.py", f"TOPIC = {literal}\n")) == 1
    assert topic_literals(TOPICS_HOME, f"TOPIC = {literal}\n") == []


def test_url_routes_and_docstrings_are_not_topics():
    source = '"""Serves $aws/things/<id>/shadow."""\nROUTE = "devices/<str:device_id>/shadows/"\n'
    assert topic_literals("shadows/api/urls.py", source) == []
