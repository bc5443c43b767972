#!/usr/bin/env bash
# The test suite on every Python that requires-python claims: one venv per interpreter, installed
# as `make install` does (torch==2.13.0 first), then pytest on a clean clone of this repository's
# HEAD (so work in progress does not leak in). Interpreters come from pyenv or PATH.
#   scripts/test_pythons.sh [WORKDIR] [VERSIONS...]   e.g. scripts/test_pythons.sh /tmp/pythons 3.10 3.12 3.13
# Outside Python 3.11 pip takes torch from PyPI (a CUDA build of several GB; it runs on the CPU).
set -uo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
work="${1:-/tmp/maskscope-pythons}"; shift || true
versions=("${@:-3.10 3.11 3.12 3.13}")
mkdir -p "$work"
rm -rf "$work/clone" && git clone -q "$repo" "$work/clone/main"
[ -e "$repo/../shared" ] && ln -sfn "$(cd "$repo/../shared" && pwd)" "$work/clone/shared"
status=0
for v in ${versions[*]}; do
    python="$(command -v pyenv >/dev/null && pyenv prefix "$(pyenv versions --bare | grep -E "^$v(\.|$)" | tail -1)" 2>/dev/null)/bin/python"
    [ -x "$python" ] || python="$(command -v "python$v")" || { echo "python $v: not found"; status=1; continue; }
    venv="$work/py$v"
    # the install is redone when pyproject.toml (the dependencies) changes, not kept by the venv's name
    stamp="$venv/.installed-$(sha256sum "$work/clone/main/pyproject.toml" | cut -c1-16)"
    if [ ! -f "$stamp" ]; then
        "$python" -m venv "$venv" && "$venv/bin/pip" install -q --upgrade pip \
            && "$venv/bin/pip" install -q torch==2.13.0 \
            && "$venv/bin/pip" install -q "$work/clone/main[all,dev,docs]" && touch "$stamp" \
            || { echo "python $v: install failed"; status=1; continue; }
    fi
    (cd "$work/clone/main" && PYTHONPATH="$work/clone/main/src" OMP_NUM_THREADS=1 \
        "$venv/bin/python" -m pytest -q -p no:cacheprovider) > "$work/test-$v.log" 2>&1
    code=$?
    echo "python $v ($("$venv/bin/python" -V 2>&1)): $(tail -1 "$work/test-$v.log" | tr -d '=') (exit $code)"
    [ $code = 0 ] || status=1
done
exit $status
