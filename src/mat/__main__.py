"""`python -m mat COMMAND ...`: the project's one command line.

Each command is `module` (which defines `add_arguments(parser)` and `run(args) -> int`) or
`module:name` (an object with those two, when one module holds several commands). Modules are
imported only when their command runs, so `python -m mat --help` stays fast.
"""

from __future__ import annotations

import argparse
import importlib
import sys

COMMANDS = {
    "data": ("mat.data.cli", "download, verify or generate a dataset"),
    "train": ("mat.cli.train", "train one (model, method, seed) run from a config file"),
    "config": ("mat.cli.config", "resolve and validate a profile's run configs"),
    "complexity": ("mat.complexity.measure", "measure Table 6's full vs modular NTK cost on this machine"),
    "table": ("mat.report.cli:table", "build a paper table from finished runs"),
    "figure": ("mat.report.cli:figure", "build a paper figure from finished runs"),
    "claims": ("mat.report.cli:claims", "check the paper's Section 5.1 claims against a profile's tables"),
    "smoke": ("mat.cli.smoke", "a few steps of every run of a profile at full size: memory, time, projected wall time"),
    "report-pages": ("mat.report.report_pages", "captions, runs table and front page of the HTML report"),
    "dvc-yaml": ("mat.report.dvc_yaml", "write or check dvc.yaml, generated from the report's target registry"),
}


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = argparse.ArgumentParser(prog="python -m mat", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (_, help_) in COMMANDS.items():
        sub.add_parser(name, help=help_, add_help=False)
    if not argv or argv[0] in ("-h", "--help") or argv[0] not in COMMANDS:
        if argv and argv[0] not in ("-h", "--help"):
            parser.print_usage(sys.stderr)
            print(f"python -m mat: unknown command {argv[0]!r}; expected one of {', '.join(COMMANDS)}", file=sys.stderr)
            return 2
        parser.print_help()
        return 0
    spec, help_ = COMMANDS[argv[0]]
    module_name, _, attr = spec.partition(":")
    module = importlib.import_module(module_name)
    if attr:
        module = getattr(module, attr)
    cmd = argparse.ArgumentParser(prog=f"python -m mat {argv[0]}", description=help_)
    module.add_arguments(cmd)
    args = cmd.parse_args(argv[1:])
    return int(module.run(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
