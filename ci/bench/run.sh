#!/usr/bin/env bash
# The benchmark suite: a benchmark, not a test. One command, on this machine:
#
#   ci/bench/run.sh
#
# Renders the `full` variant, builds it and the ceiling servers (ci/bench/ceiling) in
# release mode, runs the service on the embedded in-memory store against the local Redis
# with its default settings, and prints Markdown tables:
#   - requests/s, p50 and p99 of `{ apiVersion }` and of the authenticated `{ me }`,
#     next to the ceiling: actix-web answering plaintext, and doing one Redis GET;
#   - p99 of `{ apiVersion }` idle and while 16 clients loop on `login` (bcrypt cost 12);
#   - `{ apiVersion }` and `{ me }` with metrics and tracing both off, then both on (no
#     OTLP endpoint set), twice in turn;
#   - idle RSS of the service;
#   - `{ me }` with the service on one Redis node, then on a Redis Cluster of three
#     masters started here from the same binaries, in turn;
#   - job queue throughput (`cargo bench --bench queue` in the rendered project), on the
#     one node and on the cluster.
#   - with BASELINE=<git revision>: `{ apiVersion }` and `{ me }` and the RSS after
#     them, this checkout's `full` and the revision's in turn, to tell what a change
#     costs the hot path; BASELINE_ONLY=1 runs only this comparison.
# Needs wrk (apt-get install wrk), curl, taskset (util-linux), redis-server and redis-cli,
# and Redis on REDIS_URL or 127.0.0.1:6379.
# DURATION (default 10s) and CONNECTIONS (default 32) tune the wrk runs.
set -euo pipefail
command -v wrk >/dev/null || { echo "run.sh needs wrk: apt-get install wrk" >&2; exit 1; }
cd "$(dirname "$0")/../.."
bench=$PWD/ci/bench
duration=${DURATION:-10s}
connections=${CONNECTIONS:-32}
export REDIS_URL=${REDIS_URL:-redis://127.0.0.1:6379}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$PWD/target/bench}
work=$(mktemp -d)
pids=()
trap 'kill "${pids[@]}" 2>/dev/null || true; rm -rf "$work"' EXIT

echo "Building (release)..." >&2
cargo run -q -p ci -- render full --into "$work" >/dev/null 2>&1
(cd "$work/full" && cargo build -q --release)
cargo build -q --release -p ceiling
if [ -n "${BASELINE:-}" ]; then
  git worktree add -q --detach "$work/baseline-src" "$BASELINE"
  trap 'kill "${pids[@]}" 2>/dev/null || true; git worktree remove --force "$work/baseline-src"; rm -rf "$work"' EXIT
  # The baseline's harness builds in a target dir of its own: sharing this checkout's
  # would leave a harness behind that reads the removed worktree's examples.
  (cd "$work/baseline-src" && CARGO_TARGET_DIR=$CARGO_TARGET_DIR/baseline \
    cargo run -q -p ci -- render full --into "$work/baseline" >/dev/null 2>&1)
  (cd "$work/baseline/full" && CARGO_TARGET_DIR=$CARGO_TARGET_DIR/baseline cargo build -q --release)
fi

wait_for() { until curl -sf "$1" >/dev/null; do sleep 0.1; done; }

# One row: name, wrk script (or "-"), URL. $client may prefix wrk (a CPU pinning).
client=
measure() {
  local name=$1 script=$2 url=$3 out
  if [ "$script" = - ]; then
    out=$($client wrk -t2 -c"$connections" -d"$duration" --latency "$url")
  else
    out=$($client wrk -t2 -c"$connections" -d"$duration" --latency -s "$bench/$script" "$url")
  fi
  printf '| %s | %s | %s | %s |\n' "$name" \
    "$(awk '/Requests\/sec/ {printf "%.0f", $2}' <<<"$out")" \
    "$(awk '$1 == "50%" {print $2}' <<<"$out")" \
    "$(awk '$1 == "99%" {print $2}' <<<"$out")"
}

"$CARGO_TARGET_DIR/release/ceiling" 18090 &
pids+=($!)

export APP_HTTP__PORT=18080 APP_DATABASE__URL=embedded://memory
export APP_REDIS__URL=$REDIS_URL APP_REDIS__KEY_PREFIX="bench:$$:"
# The login storm measures hashing, not the rate limiter: without the second setting, the
# soft lockout admits only the account's allowance of concurrent checks and refuses the
# rest unhashed.
export APP_AUTH__LOGIN_ATTEMPTS_PER_IP=100000000 APP_AUTH__LOGIN_FAILURES_PER_ACCOUNT=100000000

# Starts the service with extra VAR=value settings; sets $server to its pid. $pin may
# prefix it (a CPU pinning).
pin=
binary=$CARGO_TARGET_DIR/release/full
start_service() {
  $pin env "$@" "$binary" > "$work/server.log" 2>&1 &
  server=$!
  pids+=("$server")
  wait_for http://127.0.0.1:18080/health/live
  sleep 1
}

stop_service() {
  kill "$server"
  wait "$server" 2>/dev/null || true
}

graphql=http://127.0.0.1:18080/graphql
# Registers the bench account and signs in; the in-memory store forgets it on restart.
sign_in() {
  curl -s "$graphql" -H 'Content-Type: application/json' \
    -d '{"query":"mutation { register(email: \"bench@example.com\", password: \"correct horse battery\") { message } }"}' >/dev/null
  BENCH_COOKIE=$(curl -s -D - -o /dev/null "$graphql" -H 'Content-Type: application/json' \
    -d '{"query":"mutation { login(email: \"bench@example.com\", password: \"correct horse battery\") { user { email } } }"}' \
    | awk -F'[:;] *' 'tolower($1) == "set-cookie" {print $2; exit}')
  export BENCH_COOKIE
}
# BASELINE_ONLY=1 skips to the comparison with BASELINE.
if [ -z "${BASELINE_ONLY:-}" ]; then
start_service
wait_for http://127.0.0.1:18090/plaintext
idle_rss=$(awk '/VmRSS/ {print $2, $3}' "/proc/$server/status")
sign_in

echo "## Throughput and latency ($connections connections, $duration each, wrk -t2)"
echo
echo "| Endpoint | req/s | p50 | p99 |"
echo "|---|---:|---:|---:|"
measure "ceiling: actix-web plaintext" - http://127.0.0.1:18090/plaintext
measure "ceiling: actix-web + one Redis GET" - http://127.0.0.1:18090/redis
measure "full: { apiVersion }" api_version.lua "$graphql"
measure "full: { me { id email role } } (session cookie)" me.lua "$graphql"
echo
echo "## Login storm: { apiVersion } p99, idle and while 16 clients loop on login"
echo
echo "| Condition | req/s | p50 | p99 |"
echo "|---|---:|---:|---:|"
measure "idle" api_version.lua "$graphql"
wrk -t1 -c16 -d"$((${duration%s} + 4))s" -s "$bench/login.lua" "$graphql" > "$work/storm.txt" &
storm=$!
sleep 2
measure "16 logins hashing" api_version.lua "$graphql"
wait "$storm"
echo
echo "Logins/s during the storm: $(awk '/Requests\/sec/ {printf "%.1f", $2}' "$work/storm.txt")"
echo
echo "## Memory"
echo
echo "Idle RSS of the service after start-up: $idle_rss"
echo "RSS after the runs above: $(awk '/VmRSS/ {print $2, $3}' "/proc/$server/status")"
stop_service
echo
echo "## Metrics and tracing: off, then on (Prometheus recorder and exporter, OpenTelemetry layer, no OTLP endpoint)"
echo
# The service on one core and wrk on the other: sharing both, their threads' placement
# swings throughput by a third from run to run, more than the difference measured here.
echo "Service pinned to CPU 1, wrk to CPU 0."
echo
pin="taskset -c 1"
client="taskset -c 0"
echo "| Setting | Endpoint | req/s | p50 | p99 |"
echo "|---|---|---:|---:|---:|"
for round in 1 2; do
  for setting in off on; do
    if [ "$setting" = on ]; then
      start_service APP_METRICS__ENABLED=true APP_METRICS__PORT=19464 APP_TELEMETRY__TRACES=true
      curl -sf http://127.0.0.1:19464/metrics >/dev/null
    else
      start_service APP_METRICS__ENABLED=false APP_TELEMETRY__TRACES=false
    fi
    sign_in
    measure "$setting ($round) | { apiVersion }" api_version.lua "$graphql"
    measure "$setting ($round) | { me }" me.lua "$graphql"
    stop_service
  done
done
pin= client=

# A Redis Cluster of three masters on loopback, beside the node above.
cluster_ports=(17301 17302 17303)
for port in "${cluster_ports[@]}"; do
  mkdir -p "$work/cluster/$port"
  (cd "$work/cluster/$port" && exec redis-server --port "$port" --bind 127.0.0.1 \
    --cluster-enabled yes --cluster-config-file nodes.conf --save '' --appendonly no \
    > log 2>&1) &
  pids+=($!)
done
sleep 1
redis-cli --cluster create "${cluster_ports[@]/#/127.0.0.1:}" --cluster-replicas 0 --cluster-yes >/dev/null
until redis-cli -p "${cluster_ports[0]}" cluster info | grep -q cluster_state:ok; do sleep 0.2; done
cluster_url="redis+cluster://$(IFS=,; echo "${cluster_ports[*]/#/127.0.0.1:}")"

echo
echo "## One Redis node, then a Redis Cluster of three masters (all on this machine)"
echo
echo "Service pinned to CPU 1, wrk to CPU 0; Redis and its cluster share the machine."
echo
pin="taskset -c 1"
client="taskset -c 0"
echo "| Redis | Endpoint | req/s | p50 | p99 |"
echo "|---|---|---:|---:|---:|"
for round in 1 2; do
  for redis in node cluster; do
    if [ "$redis" = cluster ]; then
      start_service APP_REDIS__URL="$cluster_url"
    else
      start_service APP_REDIS__URL="$REDIS_URL"
    fi
    sign_in
    measure "$redis ($round) | { me }" me.lua "$graphql"
    stop_service
  done
done
pin= client=
fi
if [ -n "${BASELINE:-}" ]; then
  echo
  echo "## { apiVersion } and { me }: this checkout, then $BASELINE, in turn"
  echo
  echo "Service pinned to CPU 1, wrk to CPU 0. RSS is read after each run."
  echo
  pin="taskset -c 1"
  client="taskset -c 0"
  echo "| Build | Endpoint | req/s | p50 | p99 | RSS after |"
  echo "|---|---|---:|---:|---:|---:|"
  for round in 1 2 3; do
    for build in current baseline; do
      if [ "$build" = baseline ]; then
        binary=$CARGO_TARGET_DIR/baseline/release/full
      else
        binary=$CARGO_TARGET_DIR/release/full
      fi
      start_service
      sign_in
      row=$(measure "$build ($round) | { apiVersion }" api_version.lua "$graphql")
      echo "$row $(awk '/VmRSS/ {print $2, $3}' "/proc/$server/status") |"
      row=$(measure "$build ($round) | { me }" me.lua "$graphql")
      echo "$row $(awk '/VmRSS/ {print $2, $3}' "/proc/$server/status") |"
      stop_service
    done
  done
  pin= client= binary=$CARGO_TARGET_DIR/release/full
fi
if [ -n "${BASELINE_ONLY:-}" ]; then
  exit 0
fi
echo
echo "## Job queue, on one Redis node"
echo
(cd "$work/full" && cargo bench -q --bench queue 2>/dev/null)
echo
echo "## Job queue, on the Redis Cluster"
echo
(cd "$work/full" && REDIS_URL=$cluster_url cargo bench -q --bench queue 2>/dev/null)
