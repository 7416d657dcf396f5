"""`python -m mat data ...`: get, verify or list datasets.

    python -m mat data get NAME --out DIR [--source DIR|FILE|URL] [--raw] [--seed N] [--size N[,M]] [--lock FILE] [--replace]
    python -m mat data verify NAME DIR [--lock FILE]
    python -m mat data list

Prints one line per file (path, bytes, sha256) on stdout; progress and notes go to stderr.
Expected failures print one message on stderr and exit 1 (130 on Ctrl-C), without a traceback.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .errors import DataError
from .sources import MIRRORS, NAMES, spec


def _size(text: str) -> tuple[int, int | None]:
    parts = text.split(",")
    try:
        values = [int(p) for p in parts]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected N or N,M (integers), got {text!r}") from None
    if len(values) not in (1, 2) or min(values) <= 0:
        raise argparse.ArgumentTypeError(f"expected N or N,M (positive integers), got {text!r}")
    return values[0], values[1] if len(values) == 2 else None


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    g = sub.add_parser("get", help="download, copy or generate a dataset into a folder")
    g.add_argument("name", choices=NAMES)
    g.add_argument("--out", required=True, type=Path, help="folder to create (atomically)")
    g.add_argument("--source", help="a local folder or archive, or an http(s)/file URL replacing the mirrors")
    g.add_argument("--raw", action="store_true", help="WikiText's untokenized variant (wiki.*.raw)")
    g.add_argument("--seed", type=int, default=0, help="tiny-*: generator seed (default 0)")
    g.add_argument("--size", type=_size, help="tiny-text: train tokens[,valid/test tokens]; "
                                              "tiny-images: train images[,test images]")
    g.add_argument("--lock", type=Path, help="an earlier mat-data.json the new files must match")
    g.add_argument("--mirror", action="append", dest="mirrors", metavar="URL",
                   help="try this URL instead of the built-in mirrors (repeatable)")
    g.add_argument("--replace", action="store_true",
                   help="rebuild an --out that holds anything else (other options, failed verification) "
                        "and swap it in when complete, instead of refusing")
    g.add_argument("--no-progress", action="store_true", help="no download progress bar")
    v = sub.add_parser("verify", help="re-check a dataset folder against its mat-data.json")
    v.add_argument("name", choices=NAMES)
    v.add_argument("folder", type=Path)
    v.add_argument("--lock", type=Path, help="also compare with this earlier mat-data.json")
    sub.add_parser("list", help="the datasets and where they are downloaded from")


def _note(message: str) -> None:
    print(message, file=sys.stderr)


def _print_files(folder: Path, record: dict) -> None:
    print(f"{record['name']} ({record['variant']}) in {folder}")
    print(f"source: {record.get('source')}")
    for rel, entry in record["files"].items():
        print(f"{rel}\t{entry['bytes']}\t{entry['sha256']}")


def run(args: argparse.Namespace) -> int:
    from . import acquire
    from . import manifest

    try:
        if args.action == "list":
            for name in NAMES:
                sp = spec(name)
                where = "generated" if sp.generated else ", ".join(MIRRORS.get(sp.variant, [])) or "--source only"
                print(f"{name}\t{where}")
            return 0
        if args.action == "verify":
            record = manifest.verify(args.name, args.folder, args.lock)
            _print_files(args.folder, record)
            print("verified")
            return 0
        size, eval_size = args.size if args.size else (None, None)
        out = acquire.get(
            args.name, args.out, args.source, raw=args.raw, seed=args.seed, size=size, eval_size=eval_size,
            lock=args.lock, mirrors=args.mirrors, progress=False if args.no_progress else None, log=_note,
            replace=args.replace)
        _print_files(out, manifest.read(out))
        return 0
    except DataError as exc:
        print(f"python -m mat data {args.action}: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"python -m mat data {args.action}: interrupted; nothing was left half-written", file=sys.stderr)
        return 130
