"""The resumable CSV logs: exact floats, truncation back to a checkpoint's row count, clear errors."""

from __future__ import annotations

import csv

import pytest

from mat.train.logs import CsvLog


def test_csv_log_writes_exact_floats_and_truncates_back_on_resume(tmp_path):
    path = tmp_path / "m.csv"
    values = [0.1, 1 / 3, 2.5e-300, float("nan"), None]
    with CsvLog(path, ["i", "x", "flag"]) as log:
        for i, v in enumerate(values):
            log.write({"i": i, "x": v, "flag": i % 2 == 0})
        assert log.rows == 5
    rows = list(csv.DictReader(open(path)))
    assert [float(r["x"]) for r in rows[:3]] == values[:3]  # repr round-trips bitwise
    assert rows[3]["x"] == "" and rows[4]["x"] == "" and rows[0]["flag"] == "true"

    with CsvLog(path, ["i", "x", "flag"], keep_rows=2) as log:  # resume from a checkpoint of 2 rows
        assert log.rows == 2
        log.write({"i": 9, "x": 1.0})
    assert [r["i"] for r in csv.DictReader(open(path))] == ["0", "1", "9"]

    with pytest.raises(ValueError, match="fewer than the 7"):
        CsvLog(path, ["i", "x", "flag"], keep_rows=7)
    with pytest.raises(ValueError, match="does not match the expected columns"):
        CsvLog(path, ["i", "y", "flag"], keep_rows=1)
    with pytest.raises(FileNotFoundError, match="cannot resume"):
        CsvLog(tmp_path / "gone.csv", ["i"], keep_rows=3)
    with CsvLog(path, ["i", "x", "flag"]) as log, pytest.raises(KeyError, match="unknown columns"):
        log.write({"j": 1})
