"""Download one URL to one file: atomic, resumable, with a progress bar.

The bytes go to `DEST.part` and are renamed to `DEST` only when the transfer is complete, so
`DEST` never exists half-written. If the connection drops or the user presses Ctrl-C, the `.part`
file is kept (with the server's ETag / Last-Modified beside it in `DEST.part.json`) and the next
call resumes it with an HTTP Range request; `If-Range` makes the server send the whole file again
if it changed in between. A write error (disk full) removes the `.part` file: it is not resumable
evidence of anything.
"""

from __future__ import annotations

import http.client
import json
import os
import re
import sys
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

from tqdm import tqdm

from . import fsutil
from .errors import DataError, DownloadInterrupted

# wikitext.smerity.com answers 403 to Python's default "Python-urllib/3.x"; any explicit agent is
# accepted. MAT_USER_AGENT overrides it for networks that need something else.
USER_AGENT = os.environ.get("MAT_USER_AGENT", "Mozilla/5.0 (X11; Linux x86_64) mat-repro/0.1")
TIMEOUT_S = 60

_URL = re.compile(r"^(https?|file)://", re.IGNORECASE)


def is_url(text: str) -> bool:
    return bool(_URL.match(text))


def file_url_path(url: str) -> Path:
    """The local path of a file:// URL."""
    parsed = urllib.parse.urlparse(url)
    return Path(urllib.request.url2pathname(parsed.path))


def part_path(dest: Path) -> Path:
    return dest.with_name(dest.name + ".part")


def _meta_path(dest: Path) -> Path:
    return dest.with_name(dest.name + ".part.json")


def _progress(total: int | None, initial: int, label: str, enabled: bool | None) -> tqdm:
    # disable=None lets tqdm switch itself off when stderr is not a terminal (logs, CI).
    return tqdm(total=total, initial=initial, unit="B", unit_scale=True, unit_divisor=1024,
                desc=label, file=sys.stderr, disable=None if enabled is None else not enabled,
                leave=False)


def download(url: str, dest: Path, *, user_agent: str | None = None, progress: bool | None = None,
             timeout: float = TIMEOUT_S) -> int:
    """Fetch `url` into `dest`; return its size. Raises `DataError` (or `DownloadInterrupted`)."""
    dest = Path(dest)
    if url.lower().startswith("file://"):
        return _copy_local(file_url_path(url), dest, progress)
    part, meta_path = part_path(dest), _meta_path(dest)
    have = part.stat().st_size if part.exists() else 0
    validator = _read_validator(meta_path, url) if have else None
    headers = {"User-Agent": user_agent or USER_AGENT, "Accept-Encoding": "identity"}
    if have:
        headers["Range"] = f"bytes={have}-"
        if validator:
            headers["If-Range"] = validator
    try:
        response = urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=timeout)
    except urllib.error.HTTPError as exc:
        exc.close()
        if exc.code == 416 and have:  # our partial file is not a prefix the server recognises
            fsutil.remove_tree(part)
            fsutil.remove_tree(meta_path)
            return download(url, dest, user_agent=user_agent, progress=progress, timeout=timeout)
        raise DataError(f"HTTP {exc.code} {exc.reason}") from None
    except (urllib.error.URLError, OSError, http.client.HTTPException) as exc:
        reason = getattr(exc, "reason", None) or exc
        raise DataError(f"cannot connect: {reason}") from None

    with response:
        status = response.status
        length = response.headers.get("Content-Length")
        length = int(length) if length and length.isdigit() else None
        append = False
        if status == 206 and have:
            start = _content_range_start(response.headers.get("Content-Range", ""))
            if start != have:
                raise DataError(f"server resumed at byte {start}, expected {have}")
            append = True
        elif status != 200:
            raise DataError(f"unexpected HTTP status {status}")
        else:
            have = 0  # the server ignored the Range header (or the file changed): start over
        total = have + length if length is not None else None
        _write_validator(meta_path, url, response.headers)

        label = Path(urllib.parse.urlparse(url).path).name or dest.name
        bar = _progress(total, have, label, progress)

        def read(n: int) -> bytes:
            try:
                return response.read(n)
            except (OSError, http.client.HTTPException) as exc:
                raise _Dropped(str(exc) or type(exc).__name__) from None

        try:
            size, _ = fsutil.copy_stream(read, part, on_chunk=bar.update, append=append)
        except _Dropped as exc:
            done = part.stat().st_size if part.exists() else 0
            raise DownloadInterrupted(
                f"connection dropped after {done} of {total or '?'} bytes ({exc}); "
                f"partial file kept at {part}, run again to resume") from None
        except DataError:  # a write failure: the partial file proves nothing, drop it
            fsutil.remove_tree(part)
            fsutil.remove_tree(meta_path)
            raise
        finally:
            bar.close()
    if total is not None and size != total:
        raise DownloadInterrupted(
            f"transfer ended after {size} of {total} bytes; partial file kept at {part}, run again to resume")
    os.replace(part, dest)
    fsutil.remove_tree(meta_path)
    return size


class _Dropped(Exception):
    """Internal: the network side of a transfer failed part-way."""


def _copy_local(src: Path, dest: Path, progress: bool | None) -> int:
    """file:// sources: a plain atomic copy (no resume needed on a local disk)."""
    if not src.is_file():
        raise DataError(f"no such file: {src}")
    part = part_path(dest)
    bar = _progress(src.stat().st_size, 0, dest.name, progress)
    try:
        with open(src, "rb") as fh:
            def read(n: int) -> bytes:
                return fh.read(n)

            size, _ = fsutil.copy_stream(read, part, on_chunk=bar.update)
        os.replace(part, dest)
    except BaseException:
        fsutil.remove_tree(part)
        raise
    finally:
        bar.close()
    return size


def _content_range_start(value: str) -> int | None:
    match = re.match(r"bytes (\d+)-", value.strip())
    return int(match.group(1)) if match else None


def _read_validator(meta_path: Path, url: str) -> str | None:
    try:
        meta = json.loads(meta_path.read_text())
    except (OSError, ValueError):
        return None
    if meta.get("url") != url:
        return None
    etag = meta.get("etag")
    if etag and not etag.startswith("W/"):  # weak validators are not allowed in If-Range
        return etag
    return meta.get("last_modified")


def _write_validator(meta_path: Path, url: str, headers) -> None:
    meta = {"url": url, "etag": headers.get("ETag"), "last_modified": headers.get("Last-Modified")}
    fsutil.write_bytes_atomic(meta_path, [json.dumps(meta).encode()])
