#!/bin/sh
# The DVC stages call Snakemake through this: the project's own snakemake, found without an
# activated environment ($VIRTUAL_ENV, then the repository's .venv, then PATH), or one line
# saying what to do.
root=$(cd "$(dirname "$0")/../.." && pwd)
for exe in "${VIRTUAL_ENV:+$VIRTUAL_ENV/bin/snakemake}" "$root/.venv/bin/snakemake"; do
    if [ -n "$exe" ] && [ -x "$exe" ]; then
        exec "$exe" "$@"
    fi
done
if command -v snakemake >/dev/null 2>&1; then
    exec snakemake "$@"
fi
echo "snakemake not found (not in \$VIRTUAL_ENV, $root/.venv/bin or PATH): create the environment with" \
     "'bash scripts/setup.sh' (see README), or activate yours, then rerun dvc repro" >&2
exit 127
