"""The project's one atomic writer (`mat.atomic`) and the layers that use it: a failed write leaves
the old file and no temporary file; the data layer's disk errors name the file."""

from __future__ import annotations

import pytest

from mat import atomic


class Boom(Exception):
    pass


def test_a_failed_write_keeps_the_old_file_and_leaves_no_temporary(tmp_path):
    path = tmp_path / "a.csv"
    atomic.write_atomic(path, "old\n")
    with pytest.raises(Boom):
        with atomic.atomic_file(path) as fh:
            fh.write(b"half")
            raise Boom
    assert path.read_text() == "old\n" and atomic.temporary_files(tmp_path) == []
    atomic.write_atomic(path, [b"new", b"\n"])
    assert path.read_text() == "new\n" and sorted(p.name for p in tmp_path.iterdir()) == ["a.csv"]


def test_keep_previous_and_fixed_temporary_name(tmp_path):
    path, prev = tmp_path / "ckpt.pt", tmp_path / "ckpt.prev.pt"
    for text in ("one", "two"):
        with atomic.atomic_file(path, fsync=True, keep_previous=prev) as fh:
            fh.write(text.encode())
    assert (path.read_text(), prev.read_text()) == ("two", "one")
    with atomic.atomic_path(tmp_path / "model.pt", unique=False) as tmp:
        assert tmp.name == ".model.pt.tmp"  # torch.save names its archive after this
        tmp.write_bytes(b"w")
    assert (tmp_path / "model.pt").read_bytes() == b"w" and not tmp.exists()


def test_files_get_the_usual_mode_and_parents(tmp_path):
    path = tmp_path / "deep" / "er" / "t.md"
    atomic.write_all_atomic({path: "x", tmp_path / "b.bin": b"\0"})
    assert path.read_text() == "x" and (path.stat().st_mode & 0o777) != 0o600
    atomic.write_csv_atomic(tmp_path / "r.csv", [{"a": 1, "b": 2}], ["a", "b"])
    assert (tmp_path / "r.csv").read_bytes() == b"a,b\r\n1,2\r\n"


def test_the_data_layer_writes_through_it_and_names_the_file_on_a_disk_error(tmp_path, monkeypatch):
    from mat.data import fsutil
    from mat.data.errors import DataError

    def full(fh, data):
        raise OSError(28, "No space left on device")

    fsutil.write_bytes_atomic(tmp_path / "ok.json", [b"{}"])
    monkeypatch.setattr(fsutil, "write_chunk", full)
    with pytest.raises(DataError, match=r"could not write .*x\.json: No space left on device"):
        fsutil.write_bytes_atomic(tmp_path / "x.json", [b"{}"])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ok.json"]

