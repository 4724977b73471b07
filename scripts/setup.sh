#!/usr/bin/env bash
# Set up pcflow on a fresh machine: the system libraries it needs (Debian/Ubuntu), then .venv with the pinned
# requirements and pcflow installed editable. Safe to run again: it only adds what is missing.
#
#   bash scripts/setup.sh && . .venv/bin/activate && pcflow demo
#
# PYTHON chooses the interpreter that makes .venv (default python3, 3.10 or newer).
set -euo pipefail
cd "$(dirname "$0")/.."

python=${PYTHON:-python3}
# open3d-cpu (the comparison tests) loads libusb; headless rendering (preview.png, pcflow render) needs EGL and Mesa
packages=(libusb-1.0-0 libegl1 libgl1-mesa-dri)

say() { echo "setup: $*" >&2; }

if ! command -v "$python" >/dev/null 2>&1; then
    say "no $python found: install Python 3.10 or newer (Debian/Ubuntu: apt-get install python3 python3-venv)"
    exit 1
fi
if ! "$python" -c 'import sys; sys.exit(sys.version_info < (3, 10))'; then
    say "pcflow needs Python 3.10 or newer, $python is $("$python" -V 2>&1)"
    exit 1
fi

if command -v dpkg-query >/dev/null 2>&1 && command -v apt-get >/dev/null 2>&1; then
    missing=()
    for pkg in "${packages[@]}"; do
        dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
    done
    if [ ! -x .venv/bin/python ] && ! "$python" -c 'import ensurepip' >/dev/null 2>&1; then
        missing+=(python3-venv)  # Debian's Python makes no virtual environment without it
    fi
    if [ ${#missing[@]} -gt 0 ]; then
        if [ "$(id -u)" -eq 0 ]; then
            sudo=()
        elif command -v sudo >/dev/null 2>&1; then
            sudo=(sudo)
        else
            say "missing system packages ${missing[*]}: run as root (or install sudo): apt-get install ${missing[*]}"
            exit 1
        fi
        say "installing ${missing[*]}"
        ${sudo[@]+"${sudo[@]}"} env DEBIAN_FRONTEND=noninteractive apt-get update -qq
        ${sudo[@]+"${sudo[@]}"} env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
            "${missing[@]}"
    fi
else
    say "not a Debian/Ubuntu system: make sure libusb-1.0, EGL and Mesa's OpenGL drivers are installed"
fi

if [ ! -x .venv/bin/python ]; then
    say "creating .venv with $("$python" -V 2>&1)"
    "$python" -m venv .venv
fi
say "installing requirements.txt and pcflow (editable) into .venv"
.venv/bin/python -m pip install -q -r requirements.txt -e .
say "done: . .venv/bin/activate, then pcflow demo"
