"""The benchmarks' memory meter and their extrapolation line (mat.bench.memory, mat.bench.fit)."""

from __future__ import annotations

import sys

import pytest
import torch

from mat.bench import fit
from mat.bench.memory import Peak, rss_bytes


def test_line_fits_exact_points_and_one_point_through_the_origin():
    a, b = fit.line([1, 2, 4], [3.5, 5.5, 9.5])  # y = 1.5 + 2 x
    assert a == pytest.approx(1.5) and b == pytest.approx(2.0)
    assert fit.line([4], [2.0]) == (0.0, 0.5)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="VmHWM is Linux's")
def test_peak_reads_one_piece_of_code_apart_from_what_came_before():
    meter = Peak(torch.device("cpu"))
    assert meter.resettable
    start = rss_bytes()
    big = torch.ones(64 * 2**20)  # 256 MiB, touched
    del big
    meter.reset()  # the 256 MiB peak is behind us
    before = rss_bytes()
    quiet = meter.read()
    assert quiet - before < 128 * 2**20
    small = torch.ones(32 * 2**20)  # 128 MiB
    loud = meter.read()
    assert loud - before >= 100 * 2**20
    assert meter.overall - start >= 200 * 2**20  # the largest peak across resets is kept
    del small
