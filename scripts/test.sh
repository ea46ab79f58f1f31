#!/usr/bin/env bash
# Set up a virtual environment with everything the tests need, start the AWS emulator (moto) on
# 127.0.0.1, and run the whole test suite. Works on a fresh machine with only Python and pip.
set -euo pipefail
cd "$(dirname "$0")/.."

python3 -m venv .venv
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet -e '.[dev]'

# The policy pack's own virtualenv, built as `pulumi install` builds it (PulumiPolicy.yaml:
# virtualenv: venv): a plain venv, then requirements.txt installed from the pack directory (its
# last line installs gpufleet from the repository root). `gpufleet preview` runs the pack with it.
python3 -m venv policies/venv
(cd policies && venv/bin/python -m pip install --quiet -r requirements.txt)

# moto_server on a free loopback port, stopped when this script ends.
port=$(.venv/bin/python -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
.venv/bin/moto_server -H 127.0.0.1 -p "$port" >"${TMPDIR:-/tmp}/gpufleet-moto.log" 2>&1 &
moto_pid=$!
trap 'kill "$moto_pid" 2>/dev/null || true' EXIT
for _ in $(seq 1 100); do
  if .venv/bin/python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:$port/moto-api/')" 2>/dev/null; then
    break
  fi
  sleep 0.1
done
export GPUFLEET_MOTO_URL="http://127.0.0.1:$port"

.venv/bin/python -m pytest "$@"
