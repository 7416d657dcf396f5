"""Local sources (offline clusters): a folder in the usual layout, a local archive, a file:// URL;
and the command line's behaviour on good and bad input."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from mat.__main__ import main
from mat.data import DataError, cifar, fsutil, get, sources
from mat_data_testutil import leftovers, make_tar_gz, make_zip, sha256


def test_cli_accepts_a_folder_in_wikitext2_layout(tmp_path, wikitext_dir, wikitext_files, pin_wikitext2, capsys):
    out = tmp_path / "data" / "wt2"
    assert main(["data", "get", "wikitext2", "--out", str(out), "--source", str(wikitext_dir)]) == 0
    printed = capsys.readouterr().out
    for name, data in wikitext_files.items():
        assert (out / name).read_bytes() == data
        assert f"{name}\t{len(data)}\t{sha256(data)}" in printed
    record = json.loads((out / "mat-data.json").read_text())
    assert record["source"] == str(wikitext_dir) and record["variant"] == "wikitext2"
    assert leftovers(out.parent) == []


def test_cli_rejects_a_corrupted_folder_naming_file_and_both_hashes(tmp_path, wikitext_dir, pin_wikitext2, capsys):
    target = wikitext_dir / "wiki.train.tokens"
    data = bytearray(target.read_bytes())
    data[100] ^= 0x20  # one byte changed
    target.write_bytes(bytes(data))
    out = tmp_path / "new" / "wt2"
    assert main(["data", "get", "wikitext2", "--out", str(out), "--source", str(wikitext_dir)]) == 1
    err = capsys.readouterr().err
    assert str(target) in err and sha256(bytes(data)) in err and pin_wikitext2["wiki.train.tokens"] in err
    assert "Traceback" not in err
    assert not (tmp_path / "new").exists()  # not even the parent folder it created


def test_missing_split_file_is_named(tmp_path, wikitext_dir):
    (wikitext_dir / "wiki.valid.tokens").unlink()
    with pytest.raises(DataError, match=r"has wiki\.train\.tokens, wiki\.test\.tokens but no wiki\.valid\.tokens"):
        get("wikitext2", tmp_path / "wt2", source=str(wikitext_dir))
    assert not (tmp_path / "wt2").exists() and leftovers(tmp_path) == []


def test_wrong_layout_lists_what_was_expected_and_found(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    (src / "train.txt").write_text("hello\n")
    with pytest.raises(DataError, match=r"not in WikiText layout: expected .*wiki\.train\.tokens.*found train\.txt"):
        get("wikitext2", tmp_path / "wt2", source=str(src))
    with pytest.raises(DataError, match="not in CIFAR-10 layout"):
        get("cifar10", tmp_path / "c10", source=str(src))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["src"]


def test_unpacked_archive_folder_and_raw_variant(tmp_path, wikitext_files, monkeypatch):
    monkeypatch.setattr(sources, "PINNED_SHA256", {})
    nested = tmp_path / "download" / "wikitext-2-raw"
    nested.mkdir(parents=True)
    for name, data in wikitext_files.items():
        (nested / name.replace(".tokens", ".raw")).write_bytes(data)
    with pytest.raises(DataError, match="raw WikiText variant; run with --raw"):
        get("wikitext2", tmp_path / "wt2", source=str(tmp_path / "download"))
    out = get("wikitext2", tmp_path / "wt2", source=str(tmp_path / "download"), raw=True)
    assert sorted(p.name for p in out.iterdir()) == ["mat-data.json", "wiki.test.raw", "wiki.train.raw", "wiki.valid.raw"]


def test_local_archive_and_file_urls(tmp_path, wikitext_files, wikitext_dir, pin_wikitext2):
    archive = tmp_path / "wikitext-2-v1.zip"
    archive.write_bytes(make_zip(wikitext_files))
    a = get("wikitext2", tmp_path / "a", source=str(archive))
    b = get("wikitext2", tmp_path / "b", source=archive.as_uri())
    c = get("wikitext2", tmp_path / "c", source=wikitext_dir.as_uri())
    for out in (a, b, c):
        for name, data in wikitext_files.items():
            assert (out / name).read_bytes() == data


def test_local_cifar_folder_and_a_bad_batch(tmp_path, cifar_files, cifar_counts):
    src = tmp_path / "src"
    for rel, data in cifar_files.items():
        (src / rel).parent.mkdir(parents=True, exist_ok=True)
        (src / rel).write_bytes(data)
    out = get("cifar10", tmp_path / "c10", source=str(src))
    assert (out / "cifar-10-batches-py" / "test_batch").read_bytes() == cifar_files["cifar-10-batches-py/test_batch"]

    bad = src / "cifar-10-batches-py" / "data_batch_3"
    images = np.zeros((12, 3, 16, 16), dtype=np.uint8)  # wrong image size
    cifar._write_pickle(bad, {b"data": images.reshape(12, -1), b"labels": [0] * 12})
    with pytest.raises(DataError, match=r"data_batch_3: b'data' must be uint8 of shape \(N, 3072\)"):
        get("cifar10", tmp_path / "c10b", source=str(src / "cifar-10-batches-py"))
    assert not (tmp_path / "c10b").exists()


def test_truncated_local_archive(tmp_path, cifar_files, cifar_counts):
    body = make_tar_gz(cifar_files)
    archive = tmp_path / "cifar.tar.gz"
    archive.write_bytes(body[: len(body) - 200])
    with pytest.raises(DataError, match="damaged or truncated"):
        get("cifar10", tmp_path / "c10", source=str(archive))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cifar.tar.gz"]


def test_disk_failure_while_copying(tmp_path, wikitext_dir, pin_wikitext2, monkeypatch):
    def broken(fh, data):
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(fsutil, "write_chunk", broken)
    with pytest.raises(DataError, match="could not write .*Input/output error"):
        get("wikitext2", tmp_path / "wt2", source=str(wikitext_dir))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["wikitext-src"]


def test_occupied_output_folder_is_left_alone(tmp_path, wikitext_dir, pin_wikitext2):
    out = tmp_path / "busy"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    with pytest.raises(DataError, match="not empty and has no mat-data.json"):
        get("wikitext2", out, source=str(wikitext_dir))
    assert [p.name for p in out.iterdir()] == ["notes.txt"]
    empty = tmp_path / "empty"
    empty.mkdir()
    assert get("wikitext2", empty, source=str(wikitext_dir)) == empty  # an empty folder is fine


def test_verify_command(tmp_path, wikitext_dir, pin_wikitext2, capsys):
    out = get("wikitext2", tmp_path / "wt2", source=str(wikitext_dir))
    assert main(["data", "verify", "wikitext2", str(out)]) == 0
    assert "verified" in capsys.readouterr().out
    (out / "wiki.test.tokens").write_bytes(b"changed\n")
    assert main(["data", "verify", "wikitext2", str(out)]) == 1
    assert "wiki.test.tokens: sha256 mismatch" in capsys.readouterr().err
    assert main(["data", "verify", "tiny-text", str(out)]) == 1
    assert "holds wikitext2, not tiny-text" in capsys.readouterr().err


def test_options_that_do_not_apply_are_refused(tmp_path, wikitext_dir, capsys):
    assert main(["data", "get", "tiny-text", "--out", str(tmp_path / "t"), "--source", str(wikitext_dir)]) == 1
    assert "generated; --source does not apply" in capsys.readouterr().err
    assert main(["data", "get", "cifar10", "--out", str(tmp_path / "c"), "--raw"]) == 1
    assert "--raw applies to wikitext2 and wikitext103 only" in capsys.readouterr().err
    assert main(["data", "get", "wikitext2", "--out", str(tmp_path / "w"), "--size", "10"]) == 1
    assert "--size applies to generated datasets" in capsys.readouterr().err
    assert [p.name for p in tmp_path.iterdir()] == ["wikitext-src"]


def test_cli_in_a_fresh_process_fails_without_traceback(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "mat", "data", "get", "wikitext2", "--out", str(tmp_path / "w"),
                           "--source", str(tmp_path / "nowhere")], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1
    assert "no such file or folder" in proc.stderr and "Traceback" not in proc.stderr
