#!/usr/bin/env bash
# Set up a development/training environment for glassnet on a fresh Debian machine:
# the Fashion-MNIST dataset package, a virtual environment in .venv, and glassnet
# installed in editable mode with its test extra (PyTorch CPU as the test oracle).
# Idempotent: safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ ! -e /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz ]; then
    SUDO=""
    [ "$(id -u)" -ne 0 ] && SUDO="sudo"
    export DEBIAN_FRONTEND=noninteractive
    $SUDO apt-get update -qq
    $SUDO apt-get install -y -qq dataset-fashion-mnist
fi

if [ ! -x .venv/bin/python ]; then
    python3 -m venv .venv
fi
.venv/bin/python -m pip install -q --upgrade pip >/dev/null 2>&1 || true
.venv/bin/python -m pip install -q -e '.[test]'
echo "glassnet environment ready in .venv"
