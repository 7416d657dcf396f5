"""Resume state of a run: one file, written atomically, checksummed, read with `weights_only=True`.

A checkpoint file is `MAGIC`, the sha256 of the payload (64 hex digits), a newline, then the
`torch.save` payload. `load` refuses a file whose payload does not hash to its header (a truncated
or bit-flipped file, or one written before checksums) with `CheckpointError`. `save` keeps the
previous checkpoint as `PREVIOUS` (`checkpoint.prev.pt`), so one damaged file costs at most one
checkpoint interval: `load_latest` falls back to it.

Only tensors and plain Python values go in (no pickled objects), so loading a checkpoint can never
execute code. Random states are stored too: the torch global generator (dropout), CUDA's, and
Python's `random`; the streams the loop derives from (seed, purpose, position) need no storing.
"""

from __future__ import annotations

import hashlib
import io
import random
from pathlib import Path

import torch

from mat import run_folder
from mat.atomic import atomic_file

MAGIC = b"MATCKPT1 sha256 "
NAME = run_folder.CHECKPOINT
PREVIOUS = run_folder.CHECKPOINT_PREVIOUS


class CheckpointError(RuntimeError):
    """A checkpoint file that fails its checksum or cannot be read."""


def rng_state() -> dict:
    state = {"torch": torch.get_rng_state(), "python": random.getstate()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    torch.set_rng_state(state["torch"])
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save(path: str | Path, state: dict) -> None:
    """Write `state` with its checksum to `path` atomically, on disk (fsync) before the rename; an
    existing `path` is kept as `checkpoint.prev.pt` beside it (the last two are kept)."""
    path = Path(path)
    buffer = io.BytesIO()
    torch.save(state, buffer)
    payload = buffer.getvalue()
    with atomic_file(path, fsync=True, keep_previous=path.with_name(PREVIOUS)) as fh:
        fh.write(MAGIC + hashlib.sha256(payload).hexdigest().encode() + b"\n")
        fh.write(payload)


def load(path: str | Path, map_location: str | torch.device = "cpu") -> dict:
    """The state in `path`, after checking its checksum (CheckpointError if it fails)."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise CheckpointError(f"{path}: cannot be read ({exc.strerror or exc})") from None
    header = len(MAGIC) + 65
    if not data.startswith(MAGIC) or len(data) < header or data[header - 1 : header] != b"\n":
        raise CheckpointError(f"{path}: no checksum header (damaged, or written by an older version)")
    expected, payload = data[len(MAGIC) : header - 1].decode("ascii", "replace"), data[header:]
    got = hashlib.sha256(payload).hexdigest()
    if got != expected:
        raise CheckpointError(f"{path}: sha256 mismatch: got {got}, expected {expected} ({len(payload)} bytes of payload)")
    try:
        return torch.load(io.BytesIO(payload), map_location=map_location, weights_only=True)
    except Exception as exc:  # noqa: BLE001 -- a payload that hashes right but does not unpickle
        raise CheckpointError(f"{path}: checksum matches but the payload does not load ({exc})") from None


def candidates(work: Path) -> list[Path]:
    """The checkpoints of a `.work` folder, newest first."""
    return [p for p in (Path(work) / NAME, Path(work) / PREVIOUS) if p.is_file()]


def load_latest(work: Path, warn, map_location: str | torch.device = "cpu") -> tuple[Path, dict] | None:
    """(path, state) of the newest checkpoint in `work` that passes its checksum; each one that
    fails is reported through `warn` (one line). None if there is none good."""
    for path in candidates(work):
        try:
            return path, load(path, map_location)
        except CheckpointError as exc:
            warn(f"{exc}; not used")
    return None
