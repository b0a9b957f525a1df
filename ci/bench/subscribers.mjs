// The client of ci/bench/subscriptions.sh (run it through that script, which installs
// `ws` next to a copy of this file under target/bench/).
//
// Per round: signs the bench user in on instance A for a fresh bearer token, opens
// SUBSCRIBERS WebSocket connections to A with one `accountEvents` subscription each,
// proves every subscription live (a login on B must reach them all as SIGNED_IN), then
// POSTs `logoutEverywhere` to B and times each subscription's SESSION_REVOKED event
// from just before the POST. In the first round it also reads A's RSS once the
// subscriptions are open.
//
// The connections are split over CLIENT_THREADS worker threads (default 2): the server
// closes every connection right after its event, and one thread receiving 1000 events
// and closes in a burst is busy long enough to add its own queue to the times measured.
// The threads stamp events with the process-wide monotonic clock into shared memory,
// which the main thread reads.
//
// Settings, all from the environment: A_URL and B_URL (http://host:port), A_PID (for
// /proc/<pid>/status), EMAIL and PASSWORD of a registered user, SUBSCRIBERS (default
// 1000), ROUNDS (default 3) and CLIENT_THREADS.
//
// Prints one flat JSON object a line on stdout, for the script to tabulate:
//   {"kind":"memory","subscriptions":…,"rss_kib":…}
//   {"kind":"round","round":…,"subscriptions":…,"warm_up_logins":…,"received":…,
//    "p50_ms":…,"p99_ms":…,"max_ms":…,"answered_ms":…,"closed_4401":…}
// and its progress on stderr. Exits non-zero when a round cannot be set up.

import { readFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { Worker, isMainThread, parentPort, workerData } from 'node:worker_threads';

import { WebSocket } from 'ws';

const PROTOCOL = 'graphql-transport-ws';
const SUBSCRIPTION = 'subscription { accountEvents { kind endsThisSession } }';
// Handshakes in flight at once per thread: enough to open 1000 connections in about a
// second without overrunning the listen backlog.
const OPENING_AT_ONCE = 25;
// After the last subscribe, before the warm-up login and the RSS reading: the server
// handles each subscribe after its message arrives, and there is no answer to wait for;
// a subscription not yet listening would miss the warm-up event.
const SETTLE_MS = 2000;
// A warm-up login's SIGNED_IN makes each subscription re-read its session and account
// (see `in_good_standing`), so reaching all of them takes longer than the revocation.
const WARM_UP_WAIT_MS = 10000;
const WARM_UP_TRIES = 3;
// Without a SIGNED_IN for this long, no subscription is still re-checking its session.
const QUIET_MS = 1000;
// How long the revocation gets to reach every subscription and close its connection.
const FAN_OUT_WAIT_MS = 10000;

// Nanoseconds on the monotonic clock every thread of the process shares.
const now = () => process.hrtime.bigint();

// What the threads tell the main thread, one slot per subscription: SIGNED_IN events
// heard, when the SESSION_REVOKED that ends the session arrived (0n: not yet), and the
// close code (0: still open).
function sharedState(count) {
  return {
    signedIn: new Int32Array(new SharedArrayBuffer(4 * count)),
    revokedAt: new BigInt64Array(new SharedArrayBuffer(8 * count)),
    closeCode: new Int32Array(new SharedArrayBuffer(4 * count)),
  };
}

if (isMainThread) {
  await main();
} else {
  serveConnections();
}

// A worker thread: opens its share of the connections on command, and terminates what
// is left of them at the end of a round.
function serveConnections() {
  const { wsUrl, state } = workerData;
  let sockets = [];
  parentPort.on('message', async ({ command, token, from, to }) => {
    if (command === 'open') {
      sockets = await openRange(wsUrl, state, token, from, to);
    } else if (command === 'terminate') {
      // Waits for the closes: a late one would land in the next round's slot.
      await Promise.all(sockets.map(terminate));
      sockets = [];
    }
    parentPort.postMessage('done');
  });
}

function terminate(ws) {
  return new Promise((resolve) => {
    if (ws.readyState === WebSocket.CLOSED) return resolve();
    ws.once('close', resolve);
    ws.terminate();
  });
}

async function openRange(wsUrl, state, token, from, to) {
  const sockets = [];
  let next = from;
  const opener = async () => {
    while (next < to) {
      const slot = next;
      next += 1;
      sockets.push(await open(wsUrl, state, token, slot));
    }
  };
  await Promise.all(Array.from({ length: Math.min(OPENING_AT_ONCE, to - from) }, opener));
  return sockets;
}

// One connection with one subscription, recorded in slot `slot`. Resolves once the
// server acknowledged `connection_init` and the subscribe is sent.
function open(wsUrl, state, token, slot) {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(wsUrl, PROTOCOL);
    ws.on('error', reject);
    ws.on('close', (code) => {
      Atomics.store(state.closeCode, slot, code);
      reject(new Error(`closed with ${code} before connection_ack`));
    });
    ws.on('open', () => {
      const init = { type: 'connection_init', payload: { authorization: `Bearer ${token}` } };
      ws.send(JSON.stringify(init));
    });
    ws.on('message', (data) => {
      // Stamped before parsing: the latency ends when the frame is here.
      const at = now();
      const message = JSON.parse(data);
      if (message.type === 'connection_ack') {
        ws.send(JSON.stringify({ id: '1', type: 'subscribe', payload: { query: SUBSCRIPTION } }));
        resolve(ws);
      } else if (message.type === 'next') {
        const event = message.payload?.data?.accountEvents;
        if (event?.kind === 'SIGNED_IN') Atomics.add(state.signedIn, slot, 1);
        if (event?.kind === 'SESSION_REVOKED' && event.endsThisSession) {
          Atomics.compareExchange(state.revokedAt, slot, 0n, at);
        }
      } else if (message.type === 'error') {
        console.error(`subscribers: subscription refused: ${JSON.stringify(message.payload)}`);
      }
    });
  });
}

async function main() {
  const setting = (name, fallback) => {
    const value = process.env[name] ?? fallback;
    if (value === undefined) throw new Error(`${name} is not set`);
    return value;
  };
  const A = setting('A_URL');
  const B = setting('B_URL');
  const aPid = setting('A_PID');
  const email = setting('EMAIL');
  const password = setting('PASSWORD');
  const count = Number(setting('SUBSCRIBERS', '1000'));
  const rounds = Number(setting('ROUNDS', '3'));
  const threads = Number(setting('CLIENT_THREADS', '2'));

  const emit = (record) => console.log(JSON.stringify(record));
  const log = (message) => console.error(`subscribers: ${message}`);
  const ms = (nanoseconds) => Number((Number(nanoseconds) / 1e6).toFixed(1));

  async function graphql(base, query, token) {
    const headers = { 'content-type': 'application/json' };
    if (token) headers.authorization = `Bearer ${token}`;
    const response = await fetch(`${base}/graphql`, {
      method: 'POST',
      headers,
      body: JSON.stringify({ query }),
    });
    const body = await response.json();
    if (!response.ok || body.errors) {
      throw new Error(`${query} answered ${response.status}: ${JSON.stringify(body)}`);
    }
    return body.data;
  }

  async function login(base) {
    const query = `mutation { login(email: ${JSON.stringify(email)}, password: ${JSON.stringify(password)}, bearer: true) { sessionToken } }`;
    const token = (await graphql(base, query)).login.sessionToken;
    if (!token) throw new Error('login gave no session token');
    return token;
  }

  async function waitFor(condition, timeoutMs) {
    const deadline = Date.now() + timeoutMs;
    while (!condition()) {
      if (Date.now() > deadline) return false;
      await sleep(5);
    }
    return true;
  }

  const state = sharedState(count);
  const slots = [...Array(count).keys()];
  const wsUrl = `${A.replace(/^http/, 'ws')}/graphql`;
  const workers = Array.from({ length: threads }, () => {
    const worker = new Worker(new URL(import.meta.url), { workerData: { wsUrl, state } });
    // A connection refused or failing while it opens ends the run.
    worker.on('error', (error) => {
      console.error(error);
      process.exit(1);
    });
    return worker;
  });
  const command = (worker, message) =>
    new Promise((resolve) => {
      worker.once('message', resolve);
      worker.postMessage(message);
    });

  // Logs in on B until a SIGNED_IN reached every subscription; says how many logins it
  // took. Pub/sub keeps nothing, so a subscription not yet listening misses the event.
  async function warmUp() {
    const heard = () => slots.map((slot) => Atomics.load(state.signedIn, slot));
    for (let tries = 1; tries <= WARM_UP_TRIES; tries += 1) {
      await login(B);
      if (await waitFor(() => heard().every((events) => events > 0), WARM_UP_WAIT_MS)) {
        // After more than one login, a subscription may still be re-checking its
        // session for a later one, and a revocation landing during that check ends it
        // with that SIGNED_IN, not with a SESSION_REVOKED: wait until events stop.
        if (tries > 1) {
          let total;
          do {
            total = sum(heard());
            await sleep(QUIET_MS);
          } while (sum(heard()) !== total);
        }
        return tries;
      }
      const missing = heard().filter((events) => events === 0).length;
      log(`${missing} subscriptions did not hear SIGNED_IN; logging in again`);
    }
    throw new Error(`subscriptions still not live after ${WARM_UP_TRIES} logins`);
  }

  const vmRssKib = () =>
    Number(/^VmRSS:\s+(\d+)/m.exec(readFileSync(`/proc/${aPid}/status`, 'utf8'))[1]);

  const sum = (values) => values.reduce((a, b) => a + b, 0);
  // Nearest rank.
  const percentile = (sorted, p) => sorted[Math.max(0, Math.ceil(p * sorted.length) - 1)];

  for (let round = 1; round <= rounds; round += 1) {
    state.signedIn.fill(0);
    state.revokedAt.fill(0n);
    state.closeCode.fill(0);
    const token = await login(A);
    await Promise.all(
      workers.map((worker, index) =>
        command(worker, {
          command: 'open',
          token,
          from: Math.floor((count * index) / threads),
          to: Math.floor((count * (index + 1)) / threads),
        }),
      ),
    );
    log(`round ${round}: ${count} subscriptions open on A`);
    await sleep(SETTLE_MS);
    if (round === 1) emit({ kind: 'memory', subscriptions: count, rss_kib: vmRssKib() });
    const warmUpLogins = await warmUp();

    const t0 = now();
    const answered = graphql(B, 'mutation { logoutEverywhere }', token).then(() => now() - t0);
    await waitFor(() => slots.every((slot) => Atomics.load(state.closeCode, slot) !== 0), FAN_OUT_WAIT_MS);
    const answeredNs = await answered;

    const latencies = slots
      .map((slot) => Atomics.load(state.revokedAt, slot))
      .filter((at) => at !== 0n)
      .map((at) => at - t0)
      .sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
    const none = latencies.length === 0;
    emit({
      kind: 'round',
      round,
      subscriptions: count,
      warm_up_logins: warmUpLogins,
      received: latencies.length,
      p50_ms: none ? null : ms(percentile(latencies, 0.5)),
      p99_ms: none ? null : ms(percentile(latencies, 0.99)),
      max_ms: none ? null : ms(latencies[latencies.length - 1]),
      answered_ms: ms(answeredNs),
      closed_4401: slots.filter((slot) => Atomics.load(state.closeCode, slot) === 4401).length,
    });
    // Whatever the server left open goes before the next round's connections.
    await Promise.all(workers.map((worker) => command(worker, { command: 'terminate' })));
  }
  // The workers and fetch's kept-alive connections would hold the process open.
  process.exit(0);
}
