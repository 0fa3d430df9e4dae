#!/usr/bin/env bash
# The dashboard in a real browser: installs Chromium (Debian package) when missing and a venv with
# websocket-client, builds the release binary, starts `valuetrace demo --days 3` on a free port
# with a temporary data dir, waits for its demo.json, then runs scripts/browser-test.py against
# it (screenshots into ${BROWSER_SCREENSHOTS:-target/screenshots}). The demo is always stopped.
# Exits with browser-test.py's status. Extra arguments go to browser-test.py (e.g. --pages health).
#   VALUETRACE_BIN=PATH       uses that binary instead of building the release one.
#   BROWSER_TEST_SELF_TEST=1  runs browser-test.py --self-test instead (no build, no demo).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"

if [ ! -x /usr/bin/chromium ]; then
  echo "chromium not found: installing the Debian package chromium" >&2
  export DEBIAN_FRONTEND=noninteractive
  if [ "$(id -u)" = 0 ]; then
    apt-get install -y chromium >/dev/null || { apt-get update >/dev/null && apt-get install -y chromium >/dev/null; }
  else
    sudo -E apt-get install -y chromium >/dev/null ||
      { sudo -E apt-get update >/dev/null && sudo -E apt-get install -y chromium >/dev/null; }
  fi
fi

python="${PYTHON:-}"
if [ -z "$python" ]; then
  for candidate in python3 python3.13 python3.12 python3.11 python3.10 python3.9; do
    if command -v "$candidate" >/dev/null 2>&1 &&
      "$candidate" -c 'import sys; sys.exit(sys.version_info < (3, 9))' 2>/dev/null; then
      python="$candidate"
      break
    fi
  done
fi
[ -n "$python" ] || { echo "Python 3.9 or newer is needed for the browser test" >&2; exit 1; }

venv="${XDG_CACHE_HOME:-$HOME/.cache}/valuetrace/browser-test-venv"
if ! "$venv/bin/python" -c 'import sys' >/dev/null 2>&1; then
  rm -rf "$venv"
  mkdir -p "$(dirname "$venv")"
  "$python" -m venv "$venv"
fi
requirements="$root/scripts/browser-test-requirements.txt"
stamp="$venv/.requirements.sha256"
want="$(sha256sum "$requirements" | cut -d' ' -f1)"
if [ "$(cat "$stamp" 2>/dev/null || true)" != "$want" ]; then
  "$venv/bin/python" -m pip --disable-pip-version-check --quiet install -r "$requirements"
  echo "$want" >"$stamp"
fi

if [ "${BROWSER_TEST_SELF_TEST:-}" = 1 ]; then
  exec "$venv/bin/python" scripts/browser-test.py --self-test "$@"
fi

if [ -n "${VALUETRACE_BIN:-}" ]; then
  bin="$VALUETRACE_BIN" # a binary built already (e.g. a debug build while working on the pages)
else
  cargo build --release -p valuetrace --bin valuetrace --locked
  target="${CARGO_TARGET_DIR:-target}"
  case "$target" in /*) ;; *) target="$root/$target" ;; esac
  bin="$target/release/valuetrace"
fi

work="$(mktemp -d "${TMPDIR:-/tmp}/vt-browser-test.XXXXXX")"
demo_pid=""
test_pid=""
stop_demo() {
  if [ -n "$demo_pid" ] && kill -0 "$demo_pid" 2>/dev/null; then
    kill -INT "$demo_pid" 2>/dev/null || true
    for _ in $(seq 1 100); do
      kill -0 "$demo_pid" 2>/dev/null || break
      sleep 0.1
    done
    if kill -0 "$demo_pid" 2>/dev/null; then
      echo "the demo did not stop within 10 s of SIGINT: killing it" >&2
      kill -KILL "$demo_pid" 2>/dev/null || true
    fi
    wait "$demo_pid" 2>/dev/null || true
  fi
  demo_pid=""
}
# shellcheck disable=SC2317 # called from the trap
cleanup() {
  # browser-test.py kills its Chromium on SIGTERM.
  if [ -n "$test_pid" ] && kill -0 "$test_pid" 2>/dev/null; then
    kill -TERM "$test_pid" 2>/dev/null || true
    wait "$test_pid" 2>/dev/null || true
  fi
  stop_demo
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

data="$work/demo"
# A background job of a script starts with SIGINT ignored; `env --default-signal` restores it, so
# that SIGINT stops the demo during its backfill too (later the demo handles it, and exits cleanly).
env --default-signal=INT "$bin" demo --data-dir "$data" --listen 127.0.0.1:0 --days 3 \
  >"$work/demo.log" 2>&1 &
demo_pid=$!

# demo.json is written once the backfill is done; it is whole when it parses.
deadline=$((SECONDS + 300))
until [ -s "$data/demo.json" ] &&
  "$python" -c 'import json, sys; json.load(open(sys.argv[1]))' "$data/demo.json" 2>/dev/null; do
  if ! kill -0 "$demo_pid" 2>/dev/null; then
    echo "valuetrace demo exited before writing demo.json:" >&2
    tail -n 30 "$work/demo.log" >&2
    exit 1
  fi
  if [ "$SECONDS" -ge "$deadline" ]; then
    echo "valuetrace demo wrote no demo.json within 300 s:" >&2
    tail -n 30 "$work/demo.log" >&2
    exit 1
  fi
  sleep 0.5
done

# In the background and waited for, so that a signal to this script runs its traps at once.
"$venv/bin/python" scripts/browser-test.py --demo-json "$data/demo.json" \
  --out "${BROWSER_SCREENSHOTS:-target/screenshots}" "$@" &
test_pid=$!
status=0
wait "$test_pid" || status=$?
test_pid=""
if [ "$status" != 0 ]; then
  echo "--- the demo's last output lines:" >&2
  tail -n 20 "$work/demo.log" >&2
fi
stop_demo
exit "$status"
