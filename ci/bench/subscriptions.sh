#!/usr/bin/env bash
# The GraphQL subscriptions benchmark: a benchmark, not a test. One command, on this
# machine:
#
#   ci/bench/subscriptions.sh
#
# Renders the `full` variant, builds it in release mode and runs two instances of it, A
# and B, on one MongoDB (SecantusDB, installed and started as the harness does: see
# ci/src/mongodb.rs) and the local Redis, with bcrypt cost 4. A Node client
# (ci/bench/subscribers.mjs, its `ws` package installed under target/bench/) opens
# SUBSCRIBERS WebSocket connections to A, one `accountEvents` subscription each, all for
# one user, and the script prints Markdown tables:
#   - the RSS of A idle (after start-up and one request), with the subscriptions open,
#     and the difference; the target for 1000 is at most 40 MiB;
#   - fan-out, ROUNDS times on fresh connections: the time from POSTing
#     `logoutEverywhere` to B until each subscription on A got its SESSION_REVOKED event
#     (through Redis pub/sub), as count received, p50, p99 and max, and how many
#     connections A then closed with 4401; the target is every event within 1 s.
# The times include the client's own work: it runs on this machine, on CLIENT_THREADS
# threads (default 2), beside both instances, MongoDB and Redis.
# Needs node 20 or newer with npm, python3 with venv and pip (for SecantusDB), curl,
# flock (util-linux), and Redis on REDIS_URL or 127.0.0.1:6379.
# SUBSCRIBERS (default 1000), ROUNDS (default 3) and CLIENT_THREADS tune the run.
set -euo pipefail
cd "$(dirname "$0")/../.."
bench=$PWD/ci/bench
subscribers=${SUBSCRIBERS:-1000}
rounds=${ROUNDS:-3}
export REDIS_URL=${REDIS_URL:-redis://127.0.0.1:6379}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$PWD/target/bench}
work=$(mktemp -d)
pids=()
# SIGTERM, then a wait: SecantusDB removes its in-memory store's scratch folder on the way out.
trap 'kill "${pids[@]}" 2>/dev/null || true; wait "${pids[@]}" 2>/dev/null || true; rm -rf "$work"' EXIT

echo "Building (release)..." >&2
cargo run -q -p ci -- render full --into "$work" >/dev/null 2>&1
(cd "$work/full" && cargo build -q --release)
binary=$CARGO_TARGET_DIR/release/full

# The client's `ws` goes under target/bench/, never into the repository; the client runs
# from there, since an ES module finds its packages next to its own file.
client=$PWD/target/bench/subscribers
mkdir -p "$client"
if ! cmp -s "$bench/package.json" "$client/package.json" || [ ! -d "$client/node_modules/ws" ]; then
  echo "Installing the Node client's packages..." >&2
  cp "$bench/package.json" "$client/package.json"
  (cd "$client" && npm install --silent --no-audit --no-fund --no-package-lock >&2)
fi
cp "$bench/subscribers.mjs" "$client/subscribers.mjs"

# SecantusDB exactly as the harness pins and installs it, in the folder its tests use
# (target/mongodb-server/, stamped pinned.txt) and behind the same lock. Keep the pin
# in step with SECANTUSDB in ci/src/mongodb.rs, or each would reinstall over the other.
secantusdb=SecantusDB==0.7.0b3
mongo_root=$PWD/target/mongodb-server
installed() { [ "$(cat "$mongo_root/pinned.txt" 2>/dev/null)" = "$secantusdb" ]; }
if ! installed; then
  exec {lock}>"$mongo_root.lock"
  flock "$lock"
  if ! installed; then
    echo "Installing $secantusdb..." >&2
    scratch=$(mktemp -d "$PWD/target/.mongodb-server.XXXXXX")
    python3 -m venv "$scratch/venv" &&
      "$scratch/venv/bin/pip" install --quiet --pre "$secantusdb" &&
      printf '%s' "$secantusdb" > "$scratch/pinned.txt" ||
      { rm -rf "$scratch"; exit 1; }
    rm -rf "$mongo_root"
    mv "$scratch" "$mongo_root"
  fi
  exec {lock}>&-
fi
python=$mongo_root/venv/bin/python

free_port() {
  "$python" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# Waits until $2 answers, unless process $1 dies first (its log is $3).
wait_for() {
  until curl -sf "$2" >/dev/null; do
    kill -0 "$1" 2>/dev/null || { echo "$3:" >&2; cat "$3" >&2; exit 1; }
    sleep 0.1
  done
}

# As a module: the installed script's shebang names the scratch folder it was built in.
mongo_port=$(free_port)
"$python" -m secantus --host 127.0.0.1 --port "$mongo_port" --storage-path :memory: \
  --log-level WARNING > "$work/mongodb.log" 2>&1 &
pids+=($!)
mongo=$!
for _ in $(seq 600); do
  (exec 3<>"/dev/tcp/127.0.0.1/$mongo_port") 2>/dev/null && break
  kill -0 "$mongo" 2>/dev/null || { cat "$work/mongodb.log" >&2; exit 1; }
  sleep 0.1
done

# Each subscription holds a descriptor in the client and one in A.
if [ "$(ulimit -n)" != unlimited ] && [ "$(ulimit -n)" -lt $((2 * subscribers + 256)) ]; then
  ulimit -n $((2 * subscribers + 256))
fi

# Both instances share the users (MongoDB) and the Redis keys, so an event raised on B
# reaches the subscriptions on A.
export APP_DATABASE__URL=mongodb://127.0.0.1:$mongo_port
export APP_DATABASE__MONGODB_DATABASE=bench_subscriptions_$$
export APP_REDIS__URL=$REDIS_URL APP_REDIS__KEY_PREFIX="bench:$$:"
# The logins measure nothing here: the cheapest bcrypt, and no per-IP allowance to run
# out of over many rounds.
export APP_AUTH__BCRYPT_COST=4 APP_AUTH__LOGIN_ATTEMPTS_PER_IP=100000000
# Every connection comes from 127.0.0.1; twice the count leaves room for a round's
# connections still closing when the next round opens its own.
export APP_SUBSCRIPTIONS__MAX_CONNECTIONS_PER_CLIENT=$((2 * subscribers))
export APP_SUBSCRIPTIONS__MAX_CONNECTIONS=$((2 * subscribers))

# Starts an instance on port $1, in the scratch folder (where its mails and any `.env`
# are); sets $instance to its pid.
start_instance() {
  (cd "$work" && exec env APP_HTTP__PORT="$1" "$binary") > "$work/instance-$1.log" 2>&1 &
  instance=$!
  pids+=("$instance")
  wait_for "$instance" "http://127.0.0.1:$1/health/live" "$work/instance-$1.log"
}
port_a=$(free_port)
start_instance "$port_a"
pid_a=$instance
port_b=$(free_port)
start_instance "$port_b"

# The warm-up request: it registers the bench user, on the database both share.
email=bench-subscriptions@example.com
password="correct horse battery"
curl -sf "http://127.0.0.1:$port_a/graphql" -H 'Content-Type: application/json' \
  -d "{\"query\":\"mutation { register(email: \\\"$email\\\", password: \\\"$password\\\") { message } }\"}" >/dev/null
sleep 1
idle_kib=$(awk '/VmRSS/ {print $2}' "/proc/$pid_a/status")

mib() { awk -v kib="$1" 'BEGIN {printf "%.1f MiB", kib / 1024}'; }
# A number of the client's flat JSON lines: field $1 of line $2.
field() { sed -n "s/.*\"$1\":\([^,}]*\).*/\1/p" <<<"$2"; }

# Turns the client's lines into the two tables as they arrive.
report() {
  local line
  while read -r line; do
    case $(field kind "$line") in
      '"memory"')
        local open_kib
        open_kib=$(field rss_kib "$line")
        echo "## Memory: RSS of instance A"
        echo
        echo "| State | VmRSS |"
        echo "|---|---:|"
        echo "| idle, after start-up and one request | $(mib "$idle_kib") |"
        echo "| $(field subscriptions "$line") subscriptions open | $(mib "$open_kib") |"
        echo "| difference | $(mib $((open_kib - idle_kib))) |"
        echo
        echo "Target: a difference of at most 40 MiB for 1000 subscriptions."
        echo
        echo "## Fan-out: logoutEverywhere POSTed to B, SESSION_REVOKED received on A"
        echo
        echo "Times from just before the POST to each event's arrival at the client, whose"
        echo "${CLIENT_THREADS:-2} threads share this machine's $(nproc) cores with the service."
        echo "Warm-up logins: logins on B it took for every subscription to hear SIGNED_IN."
        echo
        echo "| Round | Subscriptions | Warm-up logins | Received | p50 (ms) | p99 (ms) | max (ms) | POST answered (ms) | Closed 4401 |"
        echo "|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
        ;;
      '"round"')
        printf '| %s | %s | %s | %s | %s | %s | %s | %s | %s |\n' \
          "$(field round "$line")" "$(field subscriptions "$line")" \
          "$(field warm_up_logins "$line")" "$(field received "$line")" \
          "$(field p50_ms "$line")" "$(field p99_ms "$line")" "$(field max_ms "$line")" \
          "$(field answered_ms "$line")" "$(field closed_4401 "$line")"
        ;;
    esac
  done
  echo
  echo "Target: every subscription's event within 1 s (p99 ≤ 1000 ms)."
}

A_URL=http://127.0.0.1:$port_a B_URL=http://127.0.0.1:$port_b A_PID=$pid_a \
  EMAIL=$email PASSWORD=$password SUBSCRIBERS=$subscribers ROUNDS=$rounds \
  node "$client/subscribers.mjs" | report
