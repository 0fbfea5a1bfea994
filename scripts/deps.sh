#!/usr/bin/env bash
# Install what mailroom needs on Debian 12, as root. Idempotent: installs only
# what is missing.
#   scripts/deps.sh run    build and run mailroomd
#   scripts/deps.sh test   also the test tools: kcat, Java and Maven for the
#                          real Kafka, clang for the fuzzer, python3, curl,
#                          chromium, and Python's prometheus_client,
#                          playwright and pyyaml (pip)
set -euo pipefail

want=(build-essential cmake pkg-config librdkafka-dev libnng-dev
      libjansson-dev libjemalloc-dev check)
if [ "${1:-run}" = test ]; then
	want+=(kcat python3 curl clang libclang-rt-14-dev chromium)
	command -v java >/dev/null || want+=(openjdk-17-jre-headless)
	command -v mvn >/dev/null || want+=(maven)
fi

missing=()
for p in "${want[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null |
		grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
	echo "deps: installing ${missing[*]}" >&2
	SUDO=
	[ "$(id -u)" -eq 0 ] || SUDO=sudo
	export DEBIAN_FRONTEND=noninteractive
	$SUDO apt-get update -qq
	$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" \
		>/dev/null
fi

# The tests' Python modules, from PyPI, for the python3 on PATH:
# prometheus_client parses /metrics as Prometheus would; playwright drives
# Debian's chromium (never a browser of its own: nothing runs
# `playwright install`); pyyaml reads docker/compose.yaml. A test that cannot import one reports skipped,
# with the reason.
if [ "${1:-run}" = test ]; then
	for m in prometheus_client:prometheus_client playwright:playwright \
		yaml:pyyaml; do
		python3 -c "import ${m%%:*}" 2>/dev/null && continue
		echo "deps: pip install ${m#*:}" >&2
		python3 -m pip install -q "${m#*:}" 2>/dev/null ||
			python3 -m pip install -q --break-system-packages \
				"${m#*:}" ||
			echo "deps: cannot install ${m#*:} with pip" >&2
	done
fi
