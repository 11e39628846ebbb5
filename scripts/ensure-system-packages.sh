#!/usr/bin/env bash
# Install the Debian packages the test suite runs for real: litecoind (a Bitcoin-family node
# for regtest), chromium (the browser the UI tests drive) and softhsm2 (a PKCS#11 token the
# signer's HSM keystore is tested on). Already present: does nothing.
set -euo pipefail

declare -A wanted=(
  [litecoind]=/usr/lib/litecoin/litecoind
  [chromium]=/usr/bin/chromium
  [softhsm2]=/usr/lib/softhsm/libsofthsm2.so
)

missing=()
for package in "${!wanted[@]}"; do
  [[ -x "${wanted[$package]}" ]] || missing+=("$package")
done
[[ ${#missing[@]} -eq 0 ]] && exit 0

sudo=""
if [[ $(id -u) -ne 0 ]]; then
  command -v sudo >/dev/null || { echo "need root (or sudo) to install: ${missing[*]}" >&2; exit 1; }
  sudo="sudo"
fi
echo "installing Debian packages: ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get install -y --no-install-recommends "${missing[@]}" >/dev/null \
  || { $sudo apt-get update >/dev/null && $sudo apt-get install -y --no-install-recommends "${missing[@]}" >/dev/null; }
