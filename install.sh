#!/usr/bin/env bash
# Installs everything zsdemo needs, on a fresh machine, with or without internet beyond the
# package registries: the Python packages, WordNet for the hierarchy strategies, and Chromium for
# the browser test (tests/test_browser.py; Playwright cannot download browsers offline).
#
# WordNet: with internet, NLTK downloads it. Offline, Debian's wordnet-base and
# wordnet-sense-index packages provide WordNet 3.0, which `python -m zsdemo setup-wordnet`
# copies into NLTK's data path with the `lexnames` file those packages lack.
set -euo pipefail
cd "$(dirname "$0")"

apt_install() {  # apt_install WHAT PACKAGE...: installs the missing ones, says so when it cannot
    local what=$1; shift
    command -v apt-get >/dev/null 2>&1 && command -v dpkg >/dev/null 2>&1 || return 0
    local missing=() p
    for p in "$@"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
    [ ${#missing[@]} -eq 0 ] && return 0
    local sudo=()
    if [ "$(id -u)" -ne 0 ] && command -v sudo >/dev/null 2>&1; then sudo=(sudo); fi
    export DEBIAN_FRONTEND=noninteractive
    "${sudo[@]}" apt-get install -y --no-install-recommends "${missing[@]}" \
        || { "${sudo[@]}" apt-get update && "${sudo[@]}" apt-get install -y --no-install-recommends "${missing[@]}"; } \
        || echo "install.sh: could not install ${missing[*]}: $what" >&2
}

apt_install "WordNet will be downloaded by NLTK instead." wordnet-base wordnet-sense-index
apt_install "the browser test will be skipped." chromium

python -m pip install -r requirements.txt -r requirements-dev.txt
# The package itself, editable: `zsdemo` and `python -m zsdemo` work from any folder and use this
# checkout (its assets/ included).
python -m pip install --no-deps -e .
python -m zsdemo setup-wordnet \
    || echo "install.sh: WordNet is not installed; everything but the hierarchy strategies works." >&2
