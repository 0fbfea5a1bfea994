#!/usr/bin/env bash
# Build mailroom and run mailroomd on its embedded default: librdkafka's mock
# cluster in the daemon's own process, in memory, for development only.
# Extra arguments go to mailroomd (e.g. --brokers host:9092 for real Kafka).
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/deps.sh run
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j"$(nproc)" >/dev/null
echo "mailroomd: listening on tcp://127.0.0.1:7450;" \
     "try: build/mailroom publish orders/42 hello" >&2
exec build/mailroomd "$@"
