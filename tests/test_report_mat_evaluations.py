"""The tables show how often MAT evaluated the mNTK in the runs behind each row (summary.json)."""

from __future__ import annotations

import json

import pandas as pd

from mat.report.render import to_markdown
from mat.report.targets import build as build_table, write as write_table
from test_report_fakes import write_all_runs, write_profile


def _record(root, profile, experiment, method, seed, epochs):
    from mat import profiles

    path = root / profiles.Run(profile["profile"], experiment, method, seed).dir / "summary.json"
    summary = json.loads(path.read_text())
    summary["mat_evaluations"] = {"count": len(epochs), "epochs": epochs}
    path.write_text(json.dumps(summary))


def test_mat_rows_show_their_evaluation_count_and_epochs(tmp_path):
    profile = write_profile(tmp_path / "profiles")
    write_all_runs(tmp_path, profile)
    _record(tmp_path, profile, "table1", "mat", 0, [4, 12, 20])
    _record(tmp_path, profile, "table1", "mat", 1, [4, 12])
    table = build_table("table1", profile, tmp_path)
    assert table.row("mat").extra["mat_evaluations"] == 2
    assert table.row("mat").extra["mat_evaluation_epochs"] == "4 12; 4 12 20"
    assert "mat_evaluations" not in table.row("vanilla").extra
    md = to_markdown(table)
    assert "MAT's mNTK evaluations per run" in md and "2-3 (epochs 4 12 or 4 12 20)" in md
    assert "only Eq. 4-5 decided" in md  # one seed had fewer than 3

    csv_path, _ = write_table("table1", profile, tmp_path).values()
    df = pd.read_csv(csv_path).set_index("method")
    assert df.loc["mat", "mat_evaluations"] == 2 and pd.isna(df.loc["vanilla", "mat_evaluations"])


def test_runs_without_the_record_leave_the_table_unchanged(tmp_path):
    profile = write_profile(tmp_path / "profiles")
    write_all_runs(tmp_path, profile)
    table = build_table("table1", profile, tmp_path)
    assert all("mat_evaluations" not in r.extra for r in table.rows)
    assert not any("evaluations per run" in note for note in table.footnotes)
