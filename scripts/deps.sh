#!/usr/bin/env bash
# Install what mailroom needs on Debian 12, as root. Idempotent: installs only
# what is missing.
#   scripts/deps.sh run    build and run mailroomd
#   scripts/deps.sh test   also the test tools: kcat, Java and Maven for the
#                          real Kafka, clang for the fuzzer, python3
set -euo pipefail

want=(build-essential cmake pkg-config librdkafka-dev libnng-dev
      libjansson-dev check)
if [ "${1:-run}" = test ]; then
	want+=(kcat python3 clang libclang-rt-14-dev)
	command -v java >/dev/null || want+=(openjdk-17-jre-headless)
	command -v mvn >/dev/null || want+=(maven)
fi

missing=()
for p in "${want[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null |
		grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
	exit 0
fi
echo "deps: installing ${missing[*]}" >&2
SUDO=
[ "$(id -u)" -eq 0 ] || SUDO=sudo
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
