#!/usr/bin/env bash
# Build mailroom and run mailroomd on its embedded default: librdkafka's mock
# cluster in the daemon's own process, in memory, for development only.
# Extra arguments go to mailroomd (e.g. --brokers host:9092 for real Kafka).
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/deps.sh run
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j"$(nproc)" >/dev/null
# The HTTP API's bearer token (docs/HTTP.md): mailroomd makes the file
# with a random one on its first run.
mkdir -p .mailroom
echo "mailroomd: listening on tcp://127.0.0.1:7450 and" \
     "http://127.0.0.1:7480 (token in .mailroom/http.token);" \
     "try: build/mailroom publish orders/42 hello" >&2
exec build/mailroomd --set http.token_file=.mailroom/http.token "$@"
