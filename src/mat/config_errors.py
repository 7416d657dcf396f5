"""One wording for a config value that is out of range or of the wrong type, shared by the blocks
that validate themselves (`method:` in mat.policies, `optim:` in mat.optim)."""

from __future__ import annotations

from typing import Any


def bad_value(block: str, key: str, value: Any, expected: str) -> ValueError:
    """`block.key: got VALUE; expected EXPECTED`, with a hint when YAML 1.1 left a number as a string."""
    hint = ""
    if isinstance(value, str):
        try:
            float(value)
            hint = " (YAML 1.1 reads a number like 1e-3 as a string; write 1.0e-3)"
        except ValueError:
            pass
    return ValueError(f"{block}.{key}: got {value!r}; expected {expected}{hint}")
