"""A profile's dataset entry (`datasets.NAME: {name, source, options}`) as a request: the
arguments of `python -m mat data get` (each one shell-quoted) and the options its `mat-data.json`
will record, so the workflow can tell a folder made with other options from the one it asked for.

Only the options `mat data get` knows are accepted, each with its type; anything else is an error
naming the key, so nothing unexpected ever reaches a shell.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass
from pathlib import Path

from .errors import DataError
from .manifest import MANIFEST, read
from .sources import spec

# option -> (what it takes, datasets it applies to)
KNOWN = {
    "seed": ("an integer", ("tiny-text", "tiny-images")),
    "size": ("N or 'N,M' (positive integers)", ("tiny-text", "tiny-images")),
    "raw": ("true or false", ("wikitext2", "wikitext103")),
}


@dataclass(frozen=True)
class Request:
    name: str
    raw: bool
    seed: int
    size: int | None
    eval_size: int | None
    source: str | None

    def cli_args(self) -> str:
        """`NAME [--seed N] [--size N,M] [--raw] [--source S]`, every value shell-quoted."""
        args = [self.name]
        if spec(self.name).generated:
            args += ["--seed", str(self.seed)]
            if self.size is not None:
                args += ["--size", f"{self.size}" + (f",{self.eval_size}" if self.eval_size is not None else "")]
        if self.raw:
            args.append("--raw")
        if self.source:
            args += ["--source", self.source]
        return " ".join(shlex.quote(a) for a in args)

    def recorded_options(self) -> dict:
        """The `options` entry `mat data get` writes into mat-data.json for this request."""
        from .acquire import options_for

        return options_for(spec(self.name, raw=self.raw), self.raw, self.seed, self.size, self.eval_size, self.source)


def _int(where: str, value) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise DataError(f"{where}: expected an integer, got {value!r}")
    return value


def _size(where: str, value) -> tuple[int, int | None]:
    parts = [value] if isinstance(value, int) and not isinstance(value, bool) else str(value).split(",")
    try:
        numbers = [int(str(p).strip()) for p in parts]
    except ValueError:
        numbers = []
    if len(numbers) not in (1, 2) or min(numbers) <= 0:
        raise DataError(f"{where}: expected N or 'N,M' (positive integers), got {value!r}")
    return numbers[0], (numbers[1] if len(numbers) == 2 else None)


def from_profile(label: str, entry: dict) -> Request:
    """The request of one profile dataset entry; `label` (e.g. 'tiny: datasets.tiny-text') starts
    every error message."""
    name = entry.get("name")
    sp = spec(name)  # DataError for an unknown name
    options = entry.get("options") or {}
    if not isinstance(options, dict):
        raise DataError(f"{label}.options: expected a mapping, got {options!r}")
    seed, size, eval_size, raw = 0, None, None, False
    for key, value in options.items():
        where = f"{label}.options.{key}"
        if key not in KNOWN:
            raise DataError(f"{where}: unknown option; allowed: {', '.join(sorted(KNOWN))}")
        if name not in KNOWN[key][1]:
            raise DataError(f"{where}: applies to {', '.join(KNOWN[key][1])}, not {name}")
        if key == "seed":
            seed = _int(where, value)
        elif key == "size":
            size, eval_size = _size(where, value)
        elif not isinstance(value, bool):
            raise DataError(f"{where}: expected true or false, got {value!r}")
        else:
            raw = value
    source = entry.get("source")
    if source is not None and not isinstance(source, str):
        raise DataError(f"{label}.source: expected a path or URL, got {source!r}")
    if source and sp.generated:
        raise DataError(f"{label}.source: {name} is generated; source does not apply")
    return Request(name, raw, seed, size, eval_size, source or None)


def mismatch(folder: Path, request: Request) -> str | None:
    """Why the dataset folder is not the one requested (None if it is, or if there is none yet)."""
    path = Path(folder) / MANIFEST
    if not path.is_file():
        return None
    try:
        record = read(path)
    except DataError as exc:
        return str(exc)
    want_variant = spec(request.name, raw=request.raw).variant
    if record["name"] != request.name or record["variant"] != want_variant:
        return f"{path}: holds {record['variant']}, expected {want_variant}"
    want = request.recorded_options()
    if record.get("options", {}) != want:
        return f"{path}: made with options {record.get('options', {})}, expected {want}"
    return None
