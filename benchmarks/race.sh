#!/usr/bin/env bash
# Speed race against the maintainers' Allegro (`make bench-race`): creates .venv-bench (the project's pins plus
# the optional `bench` extra: nequip==0.19.1, nequip-allegro==0.8.3; never part of qallegro's own dependencies),
# then runs benchmarks/race_allegro.py in it with one thread. Extra arguments go to the script, e.g.
#   bash benchmarks/race.sh --sizes quick --json benchmarks/results/race-quick.json
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-$(command -v python3.11 || command -v python3)}
VENV=${VENV_BENCH:-.venv-bench}
if [ ! -f "$VENV/.installed" ] || [ requirements.txt -nt "$VENV/.installed" ] || [ pyproject.toml -nt "$VENV/.installed" ]; then
    test -x "$VENV/bin/python" || "$PYTHON" -m venv "$VENV"
    "$VENV/bin/python" -m pip install -q --upgrade "pip>=25"
    "$VENV/bin/pip" install -q -r requirements.txt "nequip==0.19.1" "nequip-allegro==0.8.3"
    "$VENV/bin/pip" install -q --no-deps -e .
    touch "$VENV/.installed"
fi
export QALLEGRO_DATA=${QALLEGRO_DATA:-$(if [ -d ../shared/data ]; then cd ../shared/data && pwd; else echo "$PWD/data/mirror"; fi)}
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}  # AOTInductor bakes the thread count in; 1 is fastest on 2 cores
exec "$VENV/bin/python" benchmarks/race_allegro.py "$@"
