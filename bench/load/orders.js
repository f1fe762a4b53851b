// k6: order intake (POST /api/v1/orders with pre-signed orders) and the framework ceiling
// (the same arrival rate against GET /api/v1/auth/whoami and /healthz), at a constant or ramping
// arrival rate. Driven by bench/load/run.py (`make load`); by hand:
//
//   k6 run -e BASE=http://127.0.0.1:8000 -e ORDERS=var/load/orders.json -e TARGET=orders \
//          -e PROFILE=smoke -e RATE=200 -e DURATION=20s bench/load/orders.js
//
// TARGET   orders | whoami | healthz
// PROFILE  smoke (RATE for DURATION) | steady (3,000/s, 5 min) | spike (0 -> 3,000/s in 10 s,
//          held 50 s) | soak (1,000/s, 30 min); RATE and DURATION override a profile's figures.
// Thresholds (the targets): p95 < 100 ms and < 1 % failed requests. k6 exits 99 when a
// threshold fails; the run still writes its summary.
import http from 'k6/http';
import exec from 'k6/execution';
import { SharedArray } from 'k6/data';

const BASE = __ENV.BASE || 'http://127.0.0.1:8000';
const TARGET = __ENV.TARGET || 'orders';
const PROFILE = __ENV.PROFILE || 'smoke';

const PROFILES = {
  smoke: { rate: 100, duration: '20s' },
  steady: { rate: 3000, duration: '5m' },
  spike: { rate: 3000, duration: '50s', rampUp: '10s' },
  soak: { rate: 1000, duration: '30m' },
};
const profile = PROFILES[PROFILE];
if (!profile) throw new Error(`unknown PROFILE ${PROFILE}`);
const RATE = parseInt(__ENV.RATE || profile.rate, 10);
const DURATION = __ENV.DURATION || profile.duration;
// A VU waits for its answer: enough of them for the rate at a few hundred ms each, bounded.
const MAX_VUS = parseInt(__ENV.MAX_VUS || Math.min(2000, Math.max(50, RATE)), 10);

// One copy shared by every VU. Bodies were serialised by bench/load/setup.py (nonces as decimal
// strings: above 2**53 a JSON number loses precision in JavaScript). One element per order: a
// SharedArray hands out a copy of the element read, so one element holding every order would be
// copied (megabytes) on each iteration and k6, not the server, would set the pace.
const FILE = __ENV.ORDERS || '../../var/load/orders.json';
const orders = new SharedArray('orders', () => JSON.parse(open(FILE)).orders);
const tokens = new SharedArray('tokens', () => JSON.parse(open(FILE)).tokens);

function scenario() {
  const common = { exec: 'fire', preAllocatedVUs: Math.min(MAX_VUS, Math.max(20, RATE / 10)), maxVUs: MAX_VUS };
  if (profile.rampUp) {
    return {
      executor: 'ramping-arrival-rate', startRate: 0, timeUnit: '1s', ...common,
      stages: [{ target: RATE, duration: profile.rampUp }, { target: RATE, duration: DURATION }],
    };
  }
  return { executor: 'constant-arrival-rate', rate: RATE, timeUnit: '1s', duration: DURATION, ...common };
}

export const options = {
  scenarios: { [TARGET]: scenario() },
  thresholds: {
    http_req_duration: ['p(95)<100'],
    http_req_failed: ['rate<0.01'],
  },
  summaryTrendStats: ['avg', 'min', 'med', 'p(90)', 'p(95)', 'p(99)', 'max'],
  // Every connection is kept alive; k6 reuses them across iterations of a VU.
  noConnectionReuse: false,
};

const ORDER_HEADERS = [];

export function fire() {
  if (TARGET === 'healthz') {
    note(http.get(`${BASE}/healthz`));
    return;
  }
  const [wallet, body] = orders[exec.scenario.iterationInTest % orders.length];
  if (!ORDER_HEADERS[wallet]) {
    ORDER_HEADERS[wallet] = {
      headers: { Authorization: `Bearer ${tokens[wallet]}`, 'Content-Type': 'application/json' },
      responseCallback: http.expectedStatuses(TARGET === 'orders' ? 202 : 200),
    };
  }
  const res = TARGET === 'whoami'
    ? http.get(`${BASE}/api/v1/auth/whoami`, ORDER_HEADERS[wallet])
    : http.post(`${BASE}/api/v1/orders`, body, ORDER_HEADERS[wallet]);
  note(res);
}

// The first few failures of each VU, with their status and k6's error (a refused or reset
// connection has status 0): the summary counts failures but does not say which.
let failuresNoted = 0;
function note(res) {
  if (res.status >= 200 && res.status < 300) return;
  if (failuresNoted++ < 3) console.warn(`failed: status ${res.status} ${res.error || ''} ${res.body || ''}`);
}
