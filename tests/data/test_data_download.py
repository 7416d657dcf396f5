"""End-to-end downloads against a local HTTP server: mirror fallback, User-Agent, checksums,
truncated archives, resume after a dropped connection or Ctrl-C, disk failures, lock files."""

from __future__ import annotations

import errno
import json
import urllib.error
import urllib.request

import pytest

from mat.__main__ import main
from mat.data import DataError, DownloadInterrupted, fsutil, get, load_images, sources
from mat_data_testutil import leftovers, make_tar_gz, make_zip, sha256

ZIP = "/wikitext/wikitext-2-v1.zip"
BUILTIN_MIRRORS = {k: list(v) for k, v in sources.MIRRORS.items()}  # before any fixture replaces them
BUILTIN_CIFAR_MIRRORS = BUILTIN_MIRRORS["cifar10"]


def _serve_wikitext(server, files, **route):
    from conftest import Route

    server.routes[ZIP] = Route(make_zip(files), browser_only=True, **route)
    return server.url(ZIP)


def _assert_folder(out, files):
    for name, data in files.items():
        assert (out / name).read_bytes() == data
    record = json.loads((out / "mat-data.json").read_text())
    assert record["files"] == {n: {"bytes": len(d), "sha256": sha256(d)} for n, d in files.items()}
    return record


def test_falls_back_past_404_and_sends_a_browser_user_agent(tmp_path, http_server, wikitext_files, pin_wikitext2):
    good = _serve_wikitext(http_server, wikitext_files)
    missing = http_server.url("/gone/wikitext-2-v1.zip")
    out = get("wikitext2", tmp_path / "wt2", mirrors=[missing, good])
    record = _assert_folder(out, wikitext_files)
    assert record["source"] == good
    assert record["archive"]["sha256"] == sha256(http_server.routes[ZIP].body)
    assert [(e["path"], e["status"]) for e in http_server.log] == [("/gone/wikitext-2-v1.zip", 404), (ZIP, 200)]
    assert http_server.log[1]["ua"].startswith("Mozilla/")
    assert leftovers(tmp_path) == []  # no temporary or download folder left


def test_the_server_really_rejects_pythons_default_user_agent(http_server, wikitext_files):
    url = _serve_wikitext(http_server, wikitext_files)
    with pytest.raises(urllib.error.HTTPError) as info:
        urllib.request.urlopen(url, timeout=10)
    assert info.value.code == 403


def test_every_mirror_failing_lists_what_was_tried(tmp_path, http_server, wikitext_files, pin_wikitext2):
    good = _serve_wikitext(http_server, wikitext_files)
    missing = http_server.url("/gone.zip")
    with pytest.raises(DataError) as info:
        get("wikitext2", tmp_path / "wt2", mirrors=[missing, good], user_agent="Python-urllib/3.12")
    message = str(info.value)
    assert f"{missing}: HTTP 404" in message and f"{good}: HTTP 403" in message
    assert not (tmp_path / "wt2").exists() and leftovers(tmp_path) == []


def test_pinned_checksum_mismatch_names_file_and_both_hashes(tmp_path, http_server, wikitext_files, monkeypatch):
    url = _serve_wikitext(http_server, wikitext_files)
    wrong = "0" * 64
    monkeypatch.setitem(sources.PINNED_SHA256, "wikitext2", {"wiki.valid.tokens": wrong})
    with pytest.raises(DataError) as info:
        get("wikitext2", tmp_path / "wt2", mirrors=[url])
    message = str(info.value)
    assert "wiki.valid.tokens" in message and wrong in message
    assert sha256(wikitext_files["wiki.valid.tokens"]) in message
    assert not (tmp_path / "wt2").exists() and leftovers(tmp_path) == []


def test_truncated_archive_is_an_error_and_leaves_nothing(tmp_path, http_server, wikitext_files, pin_wikitext2):
    from conftest import Route

    whole = make_zip(wikitext_files)
    http_server.routes[ZIP] = Route(whole[: len(whole) // 2])
    with pytest.raises(DataError, match="damaged or truncated"):
        get("wikitext2", tmp_path / "wt2", mirrors=[http_server.url(ZIP)])
    assert not (tmp_path / "wt2").exists() and leftovers(tmp_path) == []


def test_missing_file_in_archive_is_named(tmp_path, http_server, wikitext_files, pin_wikitext2):
    from conftest import Route

    partial = {k: v for k, v in wikitext_files.items() if k != "wiki.test.tokens"}
    http_server.routes[ZIP] = Route(make_zip(partial))
    with pytest.raises(DataError, match=r"missing wiki\.test\.tokens"):
        get("wikitext2", tmp_path / "wt2", mirrors=[http_server.url(ZIP)])
    assert leftovers(tmp_path) == []


def test_dropped_connection_is_resumed_with_a_range_request(tmp_path, http_server, wikitext_files, pin_wikitext2):
    url = _serve_wikitext(http_server, wikitext_files, cut_after=1000)
    with pytest.raises(DataError, match="run again to resume"):
        get("wikitext2", tmp_path / "wt2", mirrors=[url])
    assert not (tmp_path / "wt2").exists()
    parts = list((tmp_path / ".wt2.download").glob("*.part"))
    assert len(parts) == 1 and parts[0].stat().st_size == 1000
    assert [p.name for p in tmp_path.iterdir()] == [".wt2.download"]  # no half-built dataset folder

    http_server.routes[ZIP].cut_after = None
    out = get("wikitext2", tmp_path / "wt2", mirrors=[url])
    _assert_folder(out, wikitext_files)
    assert http_server.log[-1]["range"] == "bytes=1000-" and http_server.log[-1]["status"] == 206
    assert http_server.log[-1]["if_range"] == '"v1"'
    assert leftovers(tmp_path) == []


def test_resume_starts_over_when_the_file_changed_upstream(tmp_path, http_server, wikitext_files, pin_wikitext2):
    from conftest import Route

    url = _serve_wikitext(http_server, wikitext_files, cut_after=700)
    http_server.routes[ZIP].body = b"x" * 5000  # the old, now stale version
    with pytest.raises(DownloadInterrupted):
        get("wikitext2", tmp_path / "wt2", mirrors=[url])
    http_server.routes[ZIP] = Route(make_zip(wikitext_files), etag='"v2"')
    out = get("wikitext2", tmp_path / "wt2", mirrors=[url])
    _assert_folder(out, wikitext_files)
    assert http_server.log[-1]["range"] == "bytes=700-" and http_server.log[-1]["status"] == 200


def test_ctrl_c_mid_download_leaves_only_a_resumable_part(tmp_path, http_server, wikitext_files, pin_wikitext2,
                                                          monkeypatch):
    url = _serve_wikitext(http_server, wikitext_files)
    monkeypatch.setattr(fsutil, "CHUNK", 512)
    real_write, calls = fsutil.write_chunk, []

    def interrupt_on_third(fh, data):  # the third 512-byte chunk of the archive
        calls.append(len(data))
        if calls.count(512) == 3:
            raise KeyboardInterrupt
        real_write(fh, data)

    monkeypatch.setattr(fsutil, "write_chunk", interrupt_on_third)
    with pytest.raises(KeyboardInterrupt):
        get("wikitext2", tmp_path / "wt2", mirrors=[url])
    assert [p.name for p in tmp_path.iterdir()] == [".wt2.download"]
    (part,) = (tmp_path / ".wt2.download").glob("*.part")
    assert part.stat().st_size == 1024

    monkeypatch.setattr(fsutil, "write_chunk", real_write)
    out = get("wikitext2", tmp_path / "wt2", mirrors=[url])
    _assert_folder(out, wikitext_files)
    assert http_server.log[-1]["range"] == "bytes=1024-"


def test_disk_full_is_a_clear_error_with_nothing_left(tmp_path, http_server, wikitext_files, pin_wikitext2,
                                                     monkeypatch):
    url = _serve_wikitext(http_server, wikitext_files)

    def full(fh, data):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(fsutil, "write_chunk", full)
    with pytest.raises(DataError, match="could not write .*No space left on device"):
        get("wikitext2", tmp_path / "wt2", mirrors=[url])
    assert list(tmp_path.iterdir()) == []


def test_cifar_archive_checked_by_published_md5(tmp_path, http_server, cifar_files, cifar_counts, monkeypatch):
    from conftest import Route

    body = make_tar_gz(cifar_files)
    http_server.routes["/kriz/cifar-10-python.tar.gz"] = Route(body)
    url = http_server.url("/kriz/cifar-10-python.tar.gz")
    import hashlib

    md5 = hashlib.md5(body).hexdigest()
    monkeypatch.setitem(sources.ARCHIVE_MD5, "cifar10", {"cifar-10-python.tar.gz": "f" * 32})
    with pytest.raises(DataError) as info:
        get("cifar10", tmp_path / "c10", mirrors=[url])
    assert "md5 mismatch" in str(info.value) and md5 in str(info.value) and "f" * 32 in str(info.value)
    assert list(tmp_path.iterdir()) == []

    monkeypatch.setitem(sources.ARCHIVE_MD5, "cifar10", {"cifar-10-python.tar.gz": md5})
    out = get("cifar10", tmp_path / "c10", mirrors=[url])
    for rel, data in cifar_files.items():
        assert (out / rel).read_bytes() == data
    images = load_images(out)
    assert images.train_x.shape == (60, 3, 32, 32) and images.test_x.shape == (20, 3, 32, 32)


def test_lock_file_detects_a_changed_upstream(tmp_path, http_server, wikitext_files, monkeypatch):
    monkeypatch.setattr(sources, "MIN_BYTES", {})  # the fixture corpus is far smaller than WikiText-103
    url = _serve_wikitext(http_server, wikitext_files)
    first = get("wikitext103", tmp_path / "first", mirrors=[url])
    changed = dict(wikitext_files)
    changed["wiki.train.tokens"] = changed["wiki.train.tokens"].replace(b" . ", b" ; ", 1)
    _serve_wikitext(http_server, changed)
    with pytest.raises(DataError) as info:
        get("wikitext103", tmp_path / "second", mirrors=[url], lock=first / "mat-data.json")
    message = str(info.value)
    assert "wiki.train.tokens" in message and "upstream changed" in message
    assert sha256(changed["wiki.train.tokens"]) in message and sha256(wikitext_files["wiki.train.tokens"]) in message
    assert not (tmp_path / "second").exists()


def test_existing_folder_is_reverified_not_refetched(tmp_path, http_server, wikitext_files, pin_wikitext2):
    url = _serve_wikitext(http_server, wikitext_files)
    out = get("wikitext2", tmp_path / "wt2", mirrors=[url])
    requests = len(http_server.log)
    assert get("wikitext2", out, mirrors=[url]) == out
    assert len(http_server.log) == requests

    target = out / "wiki.valid.tokens"
    corrupted = bytearray(target.read_bytes())
    corrupted[10] ^= 1
    target.write_bytes(bytes(corrupted))
    with pytest.raises(DataError, match="left untouched") as info:
        get("wikitext2", out, mirrors=[url])
    assert sha256(bytes(corrupted)) in str(info.value)
    assert target.read_bytes() == bytes(corrupted) and len(http_server.log) == requests


def test_source_url_replaces_the_mirror_list(tmp_path, http_server, wikitext_files, pin_wikitext2, monkeypatch):
    url = _serve_wikitext(http_server, wikitext_files)
    monkeypatch.setitem(sources.MIRRORS, "wikitext2", [http_server.url("/never-asked.zip")])
    out = get("wikitext2", tmp_path / "wt2", source=url)
    _assert_folder(out, wikitext_files)
    assert [e["path"] for e in http_server.log] == [ZIP]


def test_progress_bar_goes_to_stderr(tmp_path, http_server, wikitext_files, pin_wikitext2, capsys):
    url = _serve_wikitext(http_server, wikitext_files)
    get("wikitext2", tmp_path / "wt2", mirrors=[url], progress=True)
    captured = capsys.readouterr()
    size = len(http_server.routes[ZIP].body) / 1024
    assert f"\rwikitext-2-v1.zip:" in captured.err and f"/{size:.1f}k" in captured.err and captured.out == ""


def test_cli_mirror_option(tmp_path, http_server, wikitext_files, pin_wikitext2, capsys):
    url = _serve_wikitext(http_server, wikitext_files)
    gone = http_server.url("/gone.zip")
    argv = ["data", "get", "wikitext2", "--out", str(tmp_path / "wt2"), "--mirror", gone, "--mirror", url]
    assert main(argv) == 0
    captured = capsys.readouterr()
    assert f"trying {gone}" in captured.err and f"source: {url}" in captured.out
    assert [e["status"] for e in http_server.log] == [404, 200]


def test_every_real_dataset_has_independent_mirrors():
    from urllib.parse import urlparse

    for variant, urls in BUILTIN_MIRRORS.items():
        hosts = {urlparse(u).netloc for u in urls}
        assert len(hosts) == len(urls) >= (2 if variant == "cifar10" else 3), variant


def test_cifar_falls_back_to_the_second_mirror_checked_by_the_same_md5(tmp_path, http_server, cifar_files,
                                                                       cifar_counts, monkeypatch):
    import hashlib
    from urllib.parse import urlparse

    from conftest import Route

    body = make_tar_gz(cifar_files)
    monkeypatch.setitem(sources.ARCHIVE_MD5, "cifar10", {"cifar-10-python.tar.gz": hashlib.md5(body).hexdigest()})
    # The built-in mirrors' paths, moved onto the local server: the first answers 404, the second
    # serves the archive; a damaged copy is refused by the same md5.
    paths = [urlparse(u).path for u in BUILTIN_CIFAR_MIRRORS]
    http_server.routes[paths[1]] = Route(body)
    mirrors = [http_server.url("/missing" + paths[0])] + [http_server.url(paths[1])]
    out = get("cifar10", tmp_path / "c10", mirrors=mirrors)
    for rel, data in cifar_files.items():
        assert (out / rel).read_bytes() == data

    damaged = body[:-100] + bytes(100)
    http_server.routes["/damaged" + paths[1]] = Route(damaged)
    with pytest.raises(DataError, match="md5 mismatch"):
        get("cifar10", tmp_path / "c10b", mirrors=[http_server.url("/damaged" + paths[1])])
    assert not (tmp_path / "c10b").exists()
