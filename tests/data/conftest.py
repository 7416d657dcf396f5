"""Fixtures for the datasets tests: small WikiText- and CIFAR-layout folders, archives of them,
and a local HTTP server (127.0.0.1, port 0) that plays the part of the mirrors."""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from mat.data import sources, synthetic_images, synthetic_text
from mat_data_testutil import sha256


@pytest.fixture(scope="session")
def wikitext_files(tmp_path_factory) -> dict[str, bytes]:
    """{file name: bytes} of a small corpus in WikiText-2's layout (generated, ~4k train tokens)."""
    folder = tmp_path_factory.mktemp("wt-src")
    synthetic_text.generate(folder, seed=7, train_tokens=4000, eval_tokens=1500)
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


@pytest.fixture
def wikitext_dir(tmp_path, wikitext_files) -> Path:
    folder = tmp_path / "wikitext-src"
    folder.mkdir()
    for name, data in wikitext_files.items():
        (folder / name).write_bytes(data)
    return folder


@pytest.fixture
def pin_wikitext2(monkeypatch, wikitext_files):
    """Pin the fixture corpus's hashes as if they were WikiText-2's real ones."""
    pins = {name: sha256(data) for name, data in wikitext_files.items()}
    monkeypatch.setitem(sources.PINNED_SHA256, "wikitext2", pins)
    return pins


@pytest.fixture(scope="session")
def cifar_files(tmp_path_factory) -> dict[str, bytes]:
    """{relative path: bytes} of a small set in CIFAR-10's layout (60 train / 20 test images)."""
    folder = tmp_path_factory.mktemp("cifar-src")
    synthetic_images.generate(folder, seed=3, train_size=60, test_size=20)
    base = folder / sources.CIFAR_DIR
    return {f"{sources.CIFAR_DIR}/{p.name}": p.read_bytes() for p in sorted(base.iterdir())}


@pytest.fixture
def cifar_counts(monkeypatch):
    """The real CIFAR-10 sizes are checked on every fetch; shrink them to the fixture's."""
    monkeypatch.setattr(sources, "CIFAR10_COUNTS", {"train": 60, "test": 20})
    import mat.data.manifest as manifest

    monkeypatch.setattr(manifest, "CIFAR10_COUNTS", {"train": 60, "test": 20})


@dataclass
class Route:
    body: bytes
    browser_only: bool = False  # answer 403 unless the User-Agent looks like a browser's
    status: int | None = None  # answer this status instead of the body
    cut_after: int | None = None  # close the connection after this many body bytes
    etag: str = '"v1"'


@dataclass
class Server:
    base: str = ""
    routes: dict[str, Route] = field(default_factory=dict)
    log: list[dict] = field(default_factory=list)

    def url(self, path: str) -> str:
        return self.base + path


def _handler(server: Server):
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):  # keep pytest output clean
            pass

        def do_GET(self):
            route = server.routes.get(self.path)
            ua = self.headers.get("User-Agent", "")
            rng = self.headers.get("Range")
            entry = {"path": self.path, "ua": ua, "range": rng, "if_range": self.headers.get("If-Range")}
            server.log.append(entry)
            if route is None:
                return self._status(entry, 404)
            if route.browser_only and not ua.startswith("Mozilla/"):
                return self._status(entry, 403)
            if route.status is not None:
                return self._status(entry, route.status)
            body, start = route.body, 0
            match = re.fullmatch(r"bytes=(\d+)-", rng or "")
            if_range = self.headers.get("If-Range")
            if match and (if_range is None or if_range == route.etag):
                start = int(match.group(1))
                if start >= len(body):
                    return self._status(entry, 416)
                entry["status"] = 206
                self.send_response(206)
                self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
            else:
                entry["status"] = 200
                self.send_response(200)
            part = body[start:]
            self.send_header("Content-Length", str(len(part)))
            self.send_header("ETag", route.etag)
            self.end_headers()
            if route.cut_after is not None and route.cut_after < len(part):
                self.wfile.write(part[: route.cut_after])
                self.wfile.flush()
                self.close_connection = True
                return
            self.wfile.write(part)

        def _status(self, entry: dict, code: int):
            entry["status"] = code
            self.send_response(code)
            self.send_header("Content-Length", "0")
            self.end_headers()

    return Handler


@pytest.fixture
def http_server():
    server = Server()
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler(server))
    httpd.daemon_threads = True
    server.base = f"http://127.0.0.1:{httpd.server_address[1]}"
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=5)


@pytest.fixture(autouse=True)
def _no_internet(monkeypatch):
    """Every test here must reach only 127.0.0.1: the built-in mirror lists are emptied."""
    monkeypatch.setattr(sources, "MIRRORS", {})
