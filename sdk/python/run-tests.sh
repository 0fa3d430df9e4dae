#!/usr/bin/env bash
# The Python client's tests: a venv (created once under the cargo target dir) with the package and
# the pinned test dependencies, the server binary, then pytest: unit tests, and live tests that
# start a real `valuetrace serve` and real FastAPI and Flask apps. Extra arguments go to pytest.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
cd "$root"
target="${CARGO_TARGET_DIR:-target}"
case "$target" in /*) ;; *) target="$root/$target" ;; esac
venv="$target/py-venv"

python="${PYTHON:-}"
if [ -z "$python" ]; then
  for candidate in python3.11 python3.12 python3.13 python3; do
    if command -v "$candidate" >/dev/null 2>&1 &&
      "$candidate" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
      python="$candidate"
      break
    fi
  done
fi
[ -n "$python" ] || { echo "Python 3.11 or newer is needed for the Python client's tests" >&2; exit 1; }

if ! "$venv/bin/python" -c 'import sys' >/dev/null 2>&1; then
  rm -rf "$venv"
  "$python" -m venv "$venv"
fi
pip=("$venv/bin/python" -m pip --disable-pip-version-check --quiet)
stamp="$venv/.requirements.sha256"
want="$(sha256sum "$here/requirements-test.txt" | cut -d' ' -f1)"
if [ "$(cat "$stamp" 2>/dev/null || true)" != "$want" ]; then
  "${pip[@]}" install -r "$here/requirements-test.txt"
  echo "$want" >"$stamp"
fi
# The package as a user installs it (not editable), rebuilt on every run (setuptools' build
# directory would keep stale copies, so it goes before and after).
rm -rf "$here/build" "$here"/src/*.egg-info
"${pip[@]}" install --no-deps --no-build-isolation --force-reinstall "$here"
rm -rf "$here/build" "$here"/src/*.egg-info

cargo build -p valuetrace --bin valuetrace --locked
export VALUETRACE_BIN="$target/debug/valuetrace"
export VALUETRACE_REQUIRE_SERVER=1
cd "$here"
exec "$venv/bin/python" -m pytest -q -p no:cacheprovider tests "$@"
