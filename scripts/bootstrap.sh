#!/usr/bin/env bash
# Install everything careflow needs on this machine, idempotently:
#   - Debian packages (graphviz's `dot`, tesseract for letter/fax OCR, dovecot for the
#     e-mail tests) when run as root, or a clear message naming what is missing;
#   - a virtual environment in .venv with careflow and its test extras.
# Sourced by scripts/demo.sh and scripts/test.sh; safe to run again.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

DEB_PACKAGES=(graphviz tesseract-ocr tesseract-ocr-deu tesseract-ocr-nld dovecot-imapd poppler-utils chromium)
missing=()
for pkg in "${DEB_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if ((${#missing[@]})); then
  if [[ $(id -u) -eq 0 ]]; then
    echo "careflow: installing Debian packages: ${missing[*]}" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >/dev/null
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    # dovecot's package starts a system service; careflow's tests start their own on loopback
    (service dovecot stop || systemctl stop dovecot || true) >/dev/null 2>&1
  else
    echo "careflow: missing Debian packages: ${missing[*]}" >&2
    echo "careflow: run 'sudo apt-get install ${missing[*]}' (diagrams need graphviz; OCR needs tesseract;" >&2
    echo "careflow: the e-mail tests need dovecot-imapd). Continuing; dependent features will say what is missing." >&2
  fi
fi

PY="${PYTHON:-python3}"
if [[ ! -x .venv/bin/python ]]; then
  echo "careflow: creating virtual environment .venv" >&2
  "$PY" -m venv .venv
fi
stamp=".venv/.careflow-installed"
if [[ ! -f "$stamp" || pyproject.toml -nt "$stamp" ]]; then
  echo "careflow: installing Python packages (pyproject.toml) into .venv" >&2
  .venv/bin/python -m pip install --quiet --disable-pip-version-check --upgrade pip >/dev/null
  .venv/bin/python -m pip install --quiet --disable-pip-version-check -e ".[test]"
  touch "$stamp"
fi
