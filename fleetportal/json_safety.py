"""JSON the portal can store in PostgreSQL and send back: checked once, where it comes in.

- NUL (\\u0000) in any string or key: jsonb refuses it ("unsupported Unicode escape sequence").
- Numbers beyond 64 bits (1e20, -1.79e308, a long integer): jsonb keeps them exactly, Django reads
  them back as Python ints wider than 64 bits, and orjson — which writes every reply — refuses
  those; the value could never be sent back.
- Nesting deeper than MAX_DEPTH: Python's recursive code paths (json, the shadow merge) would
  hit the recursion limit.
The walk is iterative, so a hostile document cannot blow the stack here either.
"""

import math
from typing import Any

MAX_DEPTH = 32
LIMIT = 2**63  # orjson writes integers in [-2**63, 2**64); keep clear of both ends


def problem(value: Any, *, max_depth: int = MAX_DEPTH) -> str | None:
    """Why `value` cannot be stored and sent back, naming where ("a.b[3]"); None if it can."""
    stack: list[tuple[Any, str, int]] = [(value, "", 0)]
    while stack:
        item, path, depth = stack.pop()
        if depth > max_depth:
            return f"{path or 'the document'}: nested deeper than {max_depth} levels"
        if isinstance(item, str):
            if "\x00" in item:
                return f"{path or 'the value'}: contains a NUL character (\\u0000)"
        elif isinstance(item, bool) or item is None:
            continue
        elif isinstance(item, int | float):
            if (isinstance(item, float) and not math.isfinite(item)) or abs(item) >= LIMIT:
                return f"{path or 'the value'}: {item!r} is outside the 64-bit range"
        elif isinstance(item, dict):
            for key, child in item.items():
                if isinstance(key, str) and "\x00" in key:
                    return f"{path or 'the document'}: a key contains a NUL character (\\u0000)"
                stack.append((child, f"{path}.{key}" if path else str(key), depth + 1))
        elif isinstance(item, list | tuple):
            stack.extend((child, f"{path}[{n}]", depth + 1) for n, child in enumerate(item))
    return None
