"""Model configuration: named sizes, explicit overrides, and clear errors for bad keys.

A model config is a plain dict (one block of the YAML profile). `size` picks a named preset; any
explicit key overrides the preset's value. Unknown keys are errors, so a typo in a profile fails
loudly instead of silently training the default model.
"""

from __future__ import annotations

from typing import Any, Mapping


def resolve(
    cfg: Mapping[str, Any],
    arch: str,
    sizes: Mapping[str, Mapping[str, Any]],
    defaults: Mapping[str, Any],
    required: tuple[str, ...] = (),
) -> dict[str, Any]:
    """Merge `defaults` < `sizes[cfg["size"]]` < explicit keys of `cfg`; check names and types.

    Returns a flat dict holding every key of `defaults` (and `required`). Raises ValueError naming
    the architecture, the offending key, and what was expected.
    """
    allowed = {"arch", "size", *defaults, *required}
    unknown = sorted(set(cfg) - allowed)
    if unknown:
        raise ValueError(f"model config ({arch}): unknown key(s) {unknown}; expected some of {sorted(allowed)}")
    missing = [k for k in required if k not in cfg]
    if missing:
        raise ValueError(f"model config ({arch}): missing required key(s) {missing}")
    size = cfg.get("size", None)
    if size is not None and size not in sizes:
        raise ValueError(f"model config ({arch}): size {size!r} unknown; expected one of {sorted(sizes)}")
    out = dict(defaults)
    if size is not None:
        out.update(sizes[size])
    out.update({k: v for k, v in cfg.items() if k not in ("arch", "size")})
    for k, v in out.items():
        want = type(defaults[k]) if k in defaults and defaults[k] is not None else None
        if want is float and isinstance(v, int) and not isinstance(v, bool):
            out[k] = float(v)
        elif want is int and (not isinstance(v, int) or isinstance(v, bool)):
            raise ValueError(f"model config ({arch}): key {k!r} must be an integer, got {v!r}")
    for k in required:
        if not isinstance(out[k], int) or isinstance(out[k], bool) or out[k] <= 0:
            raise ValueError(f"model config ({arch}): key {k!r} must be a positive integer, got {out[k]!r}")
    return out
