#!/usr/bin/env bash
# Benchmark (not a test): p50/p99 of `{ apiVersion }` on the release build of the `auth`
# variant, idle and while 16 clients loop on `login` at bcrypt cost 12.
# Needs wrk and a Redis on 127.0.0.1:6379 (or REDIS_URL). Usage: ci/bench/login_storm.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
bench=ci/bench
work=$(mktemp -d)
trap 'kill ${server:-} 2>/dev/null || true; rm -rf "$work"' EXIT

cargo run -q -p ci -- render auth --into "$work" >/dev/null 2>&1
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$PWD/target/bench}
(cd "$work/auth" && cargo build -q --release)

export APP_HTTP__PORT=18080 APP_DATABASE__URL=embedded://memory APP_TELEMETRY__FILTER=warn
export APP_AUTH__BCRYPT_COST=12 APP_REDIS__URL=${REDIS_URL:-redis://127.0.0.1:6379}
export APP_REDIS__KEY_PREFIX="bench:$$:"
# The storm measures hashing, not the rate limiter.
export APP_AUTH__LOGIN_ATTEMPTS_PER_ACCOUNT=100000000 APP_AUTH__LOGIN_ATTEMPTS_PER_IP=100000000
"$CARGO_TARGET_DIR/release/auth" &
server=$!
url=http://127.0.0.1:18080/graphql
until curl -sf http://127.0.0.1:18080/health/live >/dev/null; do sleep 0.1; done
curl -s "$url" -H 'Content-Type: application/json' \
  -d '{"query":"mutation { register(email: \"bench@example.com\", password: \"correct horse battery\") { message } }"}' >/dev/null

echo "== idle RSS of the server"
grep VmRSS "/proc/$server/status"

echo "== one login at cost 12 (5 sequential requests)"
for _ in 1 2 3 4 5; do
  curl -s -o /dev/null -w '%{time_total}s\n' "$url" -H 'Content-Type: application/json' \
    -d '{"query":"mutation { login(email: \"bench@example.com\", password: \"correct horse battery\") { user { email } } }"}'
done

echo "== apiVersion, idle (4 connections, 10 s)"
wrk -t1 -c4 -d10s --latency -s "$bench/api_version.lua" "$url" | grep -E "Requests/sec|50%|90%|99%"

echo "== apiVersion while 16 clients loop on login (4 connections, 10 s)"
wrk -t1 -c16 -d14s -s "$bench/login.lua" "$url" > "$work/storm.txt" &
storm=$!
sleep 2
wrk -t1 -c4 -d10s --latency -s "$bench/api_version.lua" "$url" | grep -E "Requests/sec|50%|90%|99%"
wait $storm
echo "-- the storm itself:"
grep -E "Requests/sec|Latency" "$work/storm.txt"
