"""Options every command that reads a profile's results shares: which profile, where it is
defined, where the results are (`mat table`, `figure`, `claims`, `report-pages`, `complexity`)."""

from __future__ import annotations

import argparse
from pathlib import Path

from mat import profiles


def add_profile_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--profile", default="tiny", help="profile name (config/profiles/NAME.yaml)")
    parser.add_argument("--root", default=".", help="repository root holding results/ and paper_figures/")
    parser.add_argument("--profile-dir", default=None,
                        help="folder of the profile files (default: ROOT/config/profiles)")


def load(args: argparse.Namespace) -> dict:
    profile_dir = Path(args.profile_dir) if args.profile_dir else Path(args.root) / profiles.PROFILE_DIR
    return profiles.load_profile(args.profile, profile_dir)
