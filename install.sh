#!/usr/bin/env bash
# Installs everything zsdemo needs, on a fresh machine, with or without internet beyond the
# package registries: the Python packages, and WordNet for the hierarchy strategies.
#
# WordNet: with internet, NLTK downloads it. Offline, Debian's wordnet-base and
# wordnet-sense-index packages provide WordNet 3.0, which `python -m zsdemo setup-wordnet`
# copies into NLTK's data path with the `lexnames` file those packages lack.
set -euo pipefail
cd "$(dirname "$0")"

SYSTEM_PACKAGES=(wordnet-base wordnet-sense-index)

if command -v apt-get >/dev/null 2>&1 && command -v dpkg >/dev/null 2>&1; then
    missing=()
    for p in "${SYSTEM_PACKAGES[@]}"; do
        dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
    done
    if [ ${#missing[@]} -gt 0 ]; then
        sudo=()
        if [ "$(id -u)" -ne 0 ] && command -v sudo >/dev/null 2>&1; then sudo=(sudo); fi
        export DEBIAN_FRONTEND=noninteractive
        "${sudo[@]}" apt-get install -y --no-install-recommends "${missing[@]}" \
            || { "${sudo[@]}" apt-get update && "${sudo[@]}" apt-get install -y --no-install-recommends "${missing[@]}"; } \
            || echo "install.sh: could not install ${missing[*]}; WordNet will be downloaded instead." >&2
    fi
fi

python -m pip install -r requirements.txt
python -m zsdemo setup-wordnet \
    || echo "install.sh: WordNet is not installed; everything but the hierarchy strategies works." >&2
