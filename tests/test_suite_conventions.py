"""The suite's own rules, checked on its source.

A transactional test (`django_db(transaction=True)`) must also ask for `serialized_rollback=True`:
without it, its teardown flush re-creates content types and permissions (post_migrate), and the
next serialized-rollback test in the same xdist worker fails at setup on duplicate keys — and
with it every such test after it in that worker.
"""

import re
from pathlib import Path

TESTS = Path(__file__).resolve().parent
MARK = re.compile(r"django_db\(([^)]*)\)")


def marks_without_serialized_rollback(text: str) -> list[str]:
    return [
        m.group(0)
        for m in MARK.finditer(text)
        if "transaction=True" in m.group(1) and "serialized_rollback=True" not in m.group(1)
    ]


def test_the_rule_catches_a_transactional_mark_without_serialized_rollback():
    assert marks_without_serialized_rollback("@pytest.mark.django_db(transaction=True)\n")
    assert not marks_without_serialized_rollback(
        "pytest.mark.django_db(transaction=True, serialized_rollback=True)"
    )
    assert not marks_without_serialized_rollback("@pytest.mark.django_db\n")


def test_every_transactional_test_rolls_back_serialized():
    found = {
        str(path.relative_to(TESTS)): bad
        for path in TESTS.rglob("*.py")
        if path != Path(__file__)
        and (bad := marks_without_serialized_rollback(path.read_text(encoding="utf-8")))
    }
    assert found == {}
