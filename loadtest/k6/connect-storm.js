/**
 * Connect storm: new connections at CONNECT_RATE per second for DURATION_S, each doing
 * hello -> welcome -> sub -> subscribed, holding HOLD_S, then closing. Measures the time to
 * `welcome` and to `subscribed`; refused and failed connects, close codes and errors are counted
 * and thresholded. Options and how to read the result: docs/loadtest.md.
 *
 *   k6 run -e SYMPHONIC_URL=ws://127.0.0.1:9001/ws -e CONNECT_RATE=200 -e DURATION_S=30 loadtest/k6/connect-storm.js
 */
import { WebSocket } from 'k6/experimental/websockets';
import { Counter, Rate, Trend } from 'k6/metrics';
import { SUMMARY_TREND_STATS, URL, envNumber, summary, thresholds, tokenFor } from './lib/k6-common.js';
import { SUBPROTOCOL, closeCodeOf, helloFrame, parseFrame, subFrame } from './lib/protocol.js';

const CONNECT_RATE = envNumber('CONNECT_RATE', 50);
const DURATION_S = envNumber('DURATION_S', 30);
const HOLD_S = envNumber('HOLD_S', 5);
const TOPICS = envNumber('TOPICS', 10);
const MAX_VUS = envNumber('MAX_VUS', Math.ceil(CONNECT_RATE * (HOLD_S + 5)) + 50);

const toWelcome = new Trend('symphonic_welcome_time', true);
const toSubscribed = new Trend('symphonic_subscribed_time', true);
const connected = new Rate('symphonic_connected');
const completed = new Rate('symphonic_completed');
const closes = new Counter('symphonic_closes');
const errors = new Counter('symphonic_errors');

export const options = {
  scenarios: {
    storm: {
      executor: 'constant-arrival-rate',
      exec: 'connectOnce',
      rate: CONNECT_RATE,
      timeUnit: '1s',
      duration: `${DURATION_S}s`,
      preAllocatedVUs: Math.min(MAX_VUS, Math.ceil(CONNECT_RATE * (HOLD_S + 2))),
      maxVUs: MAX_VUS,
      gracefulStop: `${HOLD_S + 10}s`,
    },
  },
  summaryTrendStats: SUMMARY_TREND_STATS,
  thresholds: thresholds({
    // Refused (HTTP 429/403 at the upgrade) or failed connects: none.
    symphonic_connected: [{ threshold: 'rate>=1', abortOnFail: true, delayAbortEval: '5s' }],
    symphonic_completed: ['rate>=1'],
    symphonic_closes: ['count==0'],
    symphonic_errors: ['count==0'],
    symphonic_welcome_time: ['p(99)<1000'],
    symphonic_subscribed_time: ['p(99)<2000'],
    // The generator kept up with the arrival rate (k6's own metric).
    dropped_iterations: ['count==0'],
  }),
};

export function connectOnce() {
  const started = Date.now();
  const topic = `k6.storm.${Math.floor(Math.random() * TOPICS)}`;
  const ws = new WebSocket(URL, SUBPROTOCOL);
  let opened = false;
  let done = false;
  let ok = false;
  const timers = [];
  const end = () => {
    if (done) return;
    done = true;
    for (const t of timers) clearTimeout(t); // a pending timer would keep the VU alive
    completed.add(ok);
    ws.close();
  };
  ws.onopen = () => {
    opened = true;
    connected.add(true);
    ws.send(helloFrame({ client: 'k6-storm', token: tokenFor('k6-storm', __VU) }));
  };
  ws.onmessage = (e) => {
    const f = parseFrame(e.data);
    if (!f) return errors.add(1, { reason: 'undecodable' });
    if (f.t === 'welcome') {
      toWelcome.add(Date.now() - started);
      ws.send(subFrame(1, topic));
    } else if (f.t === 'subscribed') {
      toSubscribed.add(Date.now() - started);
      ok = true;
      timers.push(setTimeout(end, HOLD_S * 1000));
    } else if (f.t === 'error') {
      errors.add(1, { code: String(f.code) });
      end();
    }
  };
  ws.onerror = (e) => {
    const code = closeCodeOf(e);
    if (!opened) connected.add(false);
    else if (code) closes.add(1, { code: String(code) });
    else errors.add(1, { reason: 'socket' });
  };
  ws.onclose = () => end();
  timers.push(setTimeout(end, (HOLD_S + 10) * 1000));
}

export const handleSummary = summary('connect-storm');
