"""`get(name, out, source)`: put a verified dataset folder at `out`, or fail leaving nothing behind.

The folder is built in a hidden temporary sibling (`.OUT.XXXX.partial`), checked (pinned sha256,
lock file, layout, size and format checks), given its `mat-data.json`, and only then renamed to
`out`. Any failure -- including Ctrl-C -- removes the temporary folder, so `out` either does not
exist or is complete. An `out` that already holds a finished dataset is re-verified and left alone.

Downloads go to a second hidden sibling (`.OUT.download/`), which survives an interrupted transfer
so the next run can resume it and is removed once the dataset is in place.
"""

from __future__ import annotations

import hashlib
import os
import urllib.parse
from pathlib import Path
from typing import Callable

from . import archive, fetch, fsutil, layout, manifest, synthetic_images, synthetic_text
from .errors import DataError, DownloadInterrupted
from .hashing import check_digest, file_digest, sha256_file
from .sources import Spec, spec

Log = Callable[[str], None]


def get(name: str, out: str | Path, source: str | None = None, *, raw: bool = False,
        seed: int = 0, size: int | None = None, eval_size: int | None = None,
        lock: str | Path | None = None, mirrors: list[str] | None = None,
        user_agent: str | None = None, progress: bool | None = None, log: Log | None = None,
        replace: bool = False) -> Path:
    """Fetch, copy or generate dataset `name` into folder `out`; return `out`.

    source: None (download from the mirrors, or generate for tiny-*), a local folder in the usual
        layout, a local archive (.zip / .tar.gz), or an http(s):// or file:// URL of an archive
        (which replaces the mirror list).
    raw: WikiText's untokenized variant (wiki.*.raw) instead of wiki.*.tokens.
    seed, size, eval_size: generated datasets only. size = training tokens (tiny-text) or images
        (tiny-images); eval_size = tokens of valid and of test, or test images.
    lock: a mat-data.json from an earlier fetch; the new files must hash the same.
    mirrors: replaces the built-in mirror list (tests point it at 127.0.0.1).
    replace: an `out` holding anything else (other options, a failed verification, no manifest) is
        rebuilt and swapped in once the new folder is complete, instead of refused.
    """
    log = log or (lambda message: None)
    sp = spec(name, raw=raw)
    out = Path(out).absolute()
    options = options_for(sp, raw, seed, size, eval_size, source)
    lock_path = Path(lock) if lock is not None else None
    lock_record = manifest.read(lock_path) if lock_path is not None else None
    if replace:
        try:
            if _existing(out, sp, options, lock_path, log):
                return out
        except DataError as exc:
            log(f"{out}: will be replaced ({str(exc).splitlines()[0]})")
    elif _existing(out, sp, options, lock_path, log):
        return out
    expected = manifest.expected_hashes(sp, lock_record, str(lock_path))
    created = _make_parents(out.parent)
    try:
        tmp = fsutil.make_temp_dir(out.parent, f".{out.name}.", ".partial")
    except OSError as exc:
        raise fsutil.write_failed(out.parent, exc) from None
    try:
        files, where, extra = _build(sp, tmp, source, options, expected, mirrors, user_agent, progress, out, log)
        manifest.write(tmp, sp, where, files, options, extra)
        if replace and out.exists():
            _swap(tmp, out, log)
        else:
            _publish(tmp, out, sp, options, lock_path, log)
    except BaseException:
        fsutil.remove_tree(tmp)
        for folder in reversed(created):
            try:
                folder.rmdir()
            except OSError:
                break
        raise
    return out


def options_for(sp: Spec, raw: bool, seed: int, size: int | None, eval_size: int | None, source) -> dict:
    if not sp.generated:
        if size is not None or eval_size is not None:
            raise DataError(f"--size applies to generated datasets (tiny-text, tiny-images), not {sp.name}")
        return {"raw": raw} if sp.kind == "text" else {}
    if source is not None:
        raise DataError(f"{sp.name} is generated; --source does not apply")
    if sp.kind == "text":
        train = synthetic_text.DEFAULT_TRAIN_TOKENS if size is None else size
        valid = max(1000, train // 10) if eval_size is None else eval_size
        if train < 1000 or valid < 1000:
            raise DataError(f"tiny-text needs at least 1000 tokens per split, got {train} / {valid}")
        return {"seed": seed, "train_tokens": train, "eval_tokens": valid}
    train = synthetic_images.DEFAULT_TRAIN if size is None else size
    test = synthetic_images.DEFAULT_TEST if eval_size is None else eval_size
    if train < 5 or test < 1:
        raise DataError(f"tiny-images needs at least 5 training and 1 test image, got {train} / {test}")
    return {"seed": seed, "train_size": train, "test_size": test}


def _existing(out: Path, sp: Spec, options: dict, lock: Path | None, log: Log) -> bool:
    """True if `out` already holds this dataset (verified); raise if it holds anything else."""
    if not out.exists():
        return False
    if not out.is_dir():
        raise DataError(f"{out} exists and is not a folder")
    if not (out / manifest.MANIFEST).exists():
        if any(out.iterdir()):
            raise DataError(f"{out} exists, is not empty and has no {manifest.MANIFEST}; "
                            "choose another --out or empty it")
        return False  # an empty folder is replaced by the finished one
    try:
        record = manifest.verify(sp.name, out, lock)
    except DataError as exc:
        raise DataError(f"{exc}\n{out} failed verification and was left untouched; move it aside "
                        f"and run again to fetch a fresh copy (add --lock with its {manifest.MANIFEST} "
                        "to check the new copy against it)") from None
    if record.get("variant") != sp.variant or record.get("options", {}) != options:
        raise DataError(f"{out} holds {record.get('variant')} with options {record.get('options')}, "
                        f"not {sp.variant} with {options}; choose another --out")
    log(f"{out}: already complete, re-verified")
    return True


def _make_parents(folder: Path) -> list[Path]:
    """mkdir -p, returning the folders it created (so a failure can remove them again)."""
    missing = []
    for parent in [folder, *folder.parents]:
        if parent.exists():
            break
        missing.append(parent)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise fsutil.write_failed(folder, exc) from None
    return list(reversed(missing))


def _swap(tmp: Path, out: Path, log: Log) -> None:
    """Put the finished `tmp` in place of the folder `out`: the old one is renamed aside first and
    removed after, so `out` never holds a mix of the two."""
    aside = fsutil.make_temp_dir(out.parent, f".{out.name}.", ".replaced")
    try:
        os.replace(out, aside / "old")
    except OSError as exc:
        aside.rmdir()
        raise fsutil.write_failed(out, exc) from None
    os.rename(tmp, out)
    fsutil.remove_tree(aside)
    log(f"{out}: replaced by the requested dataset")


def _publish(tmp: Path, out: Path, sp: Spec, options: dict, lock: Path | None, log: Log) -> None:
    try:
        os.rename(tmp, out)  # atomic; replaces an empty folder, refuses a non-empty one
    except OSError as exc:
        if (out / manifest.MANIFEST).exists():  # another process finished first: use theirs
            if _existing(out, sp, options, lock, log):
                fsutil.remove_tree(tmp)
                return
        raise fsutil.write_failed(out, exc) from None


def _build(sp: Spec, tmp: Path, source: str | None, options: dict, expected, mirrors, user_agent,
           progress, out: Path, log: Log) -> tuple[dict, str, dict | None]:
    """Fill `tmp`; return ({rel: (bytes, sha256)}, description of the source, archive info)."""
    if sp.generated:
        return _generate(sp, tmp, options, expected, log)
    if source is not None and not fetch.is_url(source):
        return _from_local(sp, tmp, Path(source).expanduser().absolute(), options, expected, log)
    if source is not None and source.lower().startswith("file://") and fetch.file_url_path(source).is_dir():
        return _from_local(sp, tmp, fetch.file_url_path(source), options, expected, log)
    urls = [source] if source is not None else list(mirrors if mirrors is not None else sp.mirrors)
    return _from_urls(sp, tmp, urls, options, expected, user_agent, progress, out, log)


def _measure(tmp: Path, rels) -> dict[str, tuple[int, str]]:
    return {rel: ((tmp / rel).stat().st_size, sha256_file(tmp / rel)) for rel in rels}


def _generate(sp: Spec, tmp: Path, options: dict, expected, log: Log):
    try:
        if sp.kind == "text":
            synthetic_text.generate(tmp, options["seed"], options["train_tokens"], options["eval_tokens"])
        else:
            synthetic_images.generate(tmp, options["seed"], options["train_size"], options["test_size"])
    except OSError as exc:
        raise fsutil.write_failed(tmp, exc) from None
    files = _measure(tmp, sp.files)
    manifest.check_content(tmp, sp, files, expected, options)
    log(f"generated {sp.name} (seed {options['seed']})")
    module = synthetic_text if sp.kind == "text" else synthetic_images
    settings = ", ".join(f"{k}={v}" for k, v in options.items())
    return files, f"generated by {module.__name__} ({settings})", None


def _wanted(sp: Spec) -> dict[str, str]:
    return {Path(rel).name: rel for rel in sp.files}


def _from_local(sp: Spec, tmp: Path, src: Path, options: dict, expected, log: Log):
    """A folder already holding the files (offline clusters), or a local archive file."""
    if src.is_file():
        return _from_archive(sp, tmp, src, str(src), options, expected, log)
    if not src.exists():
        raise DataError(f"--source {src}: no such file or folder")
    if sp.kind == "text":
        where, _ = layout.find_text_split_dir(src, options["raw"])
    else:
        where = layout.find_cifar_dir(src)
    files = {}
    for rel in sp.files:
        path = where / Path(rel).name
        if not path.is_file():
            raise DataError(f"{where}: missing {Path(rel).name}")
        try:
            (tmp / rel).parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise fsutil.write_failed(tmp / rel, exc) from None
        try:
            with open(path, "rb") as fh:
                files[rel] = fsutil.copy_stream(fh.read, tmp / rel)
        except DataError:
            raise
        except OSError as exc:
            raise DataError(f"could not read {path}: {exc.strerror or exc}") from None
    _check(sp, tmp, files, expected, options, f"{where}/")
    log(f"copied {sp.name} from {where}")
    return files, str(where), None


def _check(sp: Spec, tmp: Path, files, expected, options: dict, where: str) -> None:
    """check_content, but naming the source rather than the temporary folder in messages
    (`where` ends in "/" for a folder, ": " for an archive)."""
    try:
        manifest.check_content(tmp, sp, files, expected, options)
    except DataError as exc:
        raise DataError(str(exc).replace(f"{tmp}/", where).replace(str(tmp), where.rstrip("/: "))) from None


def _from_archive(sp: Spec, tmp: Path, path: Path, where: str, options: dict, expected, log: Log,
                  archive_name: str | None = None):
    archive_name = archive_name or path.name
    info = {"file": archive_name, "bytes": path.stat().st_size, "sha256": file_digest(path, "sha256")}
    md5 = sp.archive_md5(archive_name)
    if md5 is not None:
        check_digest(where, file_digest(path, "md5"), md5, "md5", "published by the dataset's authors")
    files = archive.extract(path, _wanted(sp), tmp)
    _check(sp, tmp, files, expected, options, f"{where}: ")
    log(f"extracted {sp.name} from {where}")
    return files, where, info


def _from_urls(sp: Spec, tmp: Path, urls: list[str], options: dict, expected, user_agent, progress,
               out: Path, log: Log):
    """Try each URL in order; the first that yields verified data wins."""
    if not urls:
        raise DataError(f"no download source known for {sp.variant}; pass --source")
    downloads = out.parent / f".{out.name}.download"
    attempts: list[str] = []
    interrupted = False
    try:
        downloads.mkdir(exist_ok=True)
    except OSError as exc:
        raise fsutil.write_failed(downloads, exc) from None
    try:
        for url in urls:
            name = Path(urllib.parse.urlparse(url).path).name or "download"
            target = downloads / f"{hashlib.sha256(url.encode()).hexdigest()[:10]}-{name}"
            try:
                log(f"trying {url}")
                fetch.download(url, target, user_agent=user_agent, progress=progress)
                result = _from_archive(sp, tmp, target, url, options, expected, log, archive_name=name)
                fsutil.remove_tree(downloads)
                return result
            except DownloadInterrupted as exc:
                attempts.append(f"{url}: {exc}")
                interrupted = True
            except DataError as exc:
                attempts.append(f"{url}: {exc}")
                fsutil.remove_tree(target)
                fsutil.remove_tree(fetch.part_path(target))
            for child in list(tmp.iterdir()):  # the next mirror starts from an empty folder
                fsutil.remove_tree(child)
    except BaseException:
        _tidy_downloads(downloads)
        raise
    _tidy_downloads(downloads)
    error = DownloadInterrupted if interrupted else DataError  # resumable: say so in the type too
    raise error(f"could not get {sp.variant}; tried:\n  " + "\n  ".join(attempts)
                + "\n(offline? pass --source with a folder or archive that holds the files)")


def _tidy_downloads(downloads: Path) -> None:
    """Keep the download folder only while it holds a partial transfer worth resuming."""
    if downloads.is_dir() and not any(p.name.endswith(".part") for p in downloads.iterdir()):
        fsutil.remove_tree(downloads)
