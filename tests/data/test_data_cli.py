"""`python -m mat data get tiny-text|tiny-images` at default sizes, offline, in a fresh process."""

from __future__ import annotations

import json
import subprocess
import sys
import time

import pytest

from mat.data import load_images


@pytest.mark.parametrize("name, files", [
    ("tiny-text", ["wiki.test.tokens", "wiki.train.tokens", "wiki.valid.tokens"]),
    ("tiny-images", [f"cifar-10-batches-py/{n}" for n in
                     ["batches.meta", "data_batch_1", "data_batch_2", "data_batch_3", "data_batch_4",
                      "data_batch_5", "test_batch"]]),
])
def test_generated_datasets_from_the_command_line(tmp_path, name, files):
    out = tmp_path / name
    start = time.monotonic()
    proc = subprocess.run([sys.executable, "-m", "mat", "data", "get", name, "--out", str(out)],
                          capture_output=True, text=True, timeout=120)
    elapsed = time.monotonic() - start
    assert proc.returncode == 0, proc.stderr
    record = json.loads((out / "mat-data.json").read_text())
    assert sorted(record["files"]) == files
    for rel, entry in record["files"].items():
        assert f"{rel}\t{entry['bytes']}\t{entry['sha256']}" in proc.stdout
    assert elapsed < 60  # "seconds": about 1 s each on an idle 2-core machine
    if name == "tiny-text":
        words = (out / "wiki.train.tokens").read_text().split()
        assert 200_000 <= len(words) < 202_000
    else:
        data = load_images(out)
        assert data.train_x.shape == (5000, 3, 32, 32) and data.test_x.shape == (1000, 3, 32, 32)
