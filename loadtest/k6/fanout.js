/**
 * Symphonic fan-out load test for k6 (https://k6.io), run against a deployment:
 *
 *   k6 run -e SYMPHONIC_URL=wss://gateway.example.com/ws -e SUBSCRIBERS=1000 \
 *          -e PUBLISH_RATE=20 -e DURATION_S=120 loadtest/k6/fanout.js
 *
 * SUBSCRIBERS virtual users each hold one WebSocket subscribed to TOPIC; one publisher VU
 * publishes PUBLISH_RATE messages/s to it, either over its own WebSocket (the gateway must allow
 * client publishing) or, when API_KEY is set, through POST /api/publish. Every message carries
 * the publisher's send time, so subscribers measure publish-to-receive latency (one k6 process =
 * one clock; see README.md for distributed runs). Uses the JSON subprotocol (text frames).
 * Options: see README.md.
 */
import http from 'k6/http';
import ws from 'k6/ws';
import { check, sleep } from 'k6';
import { Counter, Rate, Trend } from 'k6/metrics';

const URL = __ENV.SYMPHONIC_URL || 'ws://127.0.0.1:9001/ws';
const TOPIC = __ENV.TOPIC || 'bench.fanout';
const SUBSCRIBERS = Number(__ENV.SUBSCRIBERS || 100);
const PUBLISH_RATE = Number(__ENV.PUBLISH_RATE || 10);
const DURATION_S = Number(__ENV.DURATION_S || 60);
/** Subscribers connect during this many seconds before publishing starts. */
const RAMP_S = Number(__ENV.RAMP_S || 10);
/** Extra padding characters per message (to test larger messages). */
const PAD = 'x'.repeat(Number(__ENV.PAD_BYTES || 40));
const TOKEN = __ENV.TOKEN || undefined;
const API_KEY = __ENV.API_KEY || '';
const HTTP_URL = __ENV.HTTP_URL || URL.replace(/^ws/, 'http').replace(/\/ws\/?$/, '');
const PROTOCOL = 'symphonic.v1.json';
const WS_PARAMS = { headers: { 'Sec-WebSocket-Protocol': PROTOCOL } };

const latency = new Trend('symphonic_latency', true);
const received = new Counter('symphonic_received');
const published = new Counter('symphonic_published');
/** A message whose `prev` is not the sequence this subscriber saw last: something was missed. */
const gaps = new Counter('symphonic_gaps');
const errors = new Counter('symphonic_errors');
const subscribed = new Rate('symphonic_subscribed');

export const options = {
  scenarios: {
    subscribers: {
      executor: 'per-vu-iterations',
      exec: 'subscriber',
      vus: SUBSCRIBERS,
      iterations: 1,
      maxDuration: `${RAMP_S + DURATION_S + 30}s`,
    },
    publisher: {
      executor: 'per-vu-iterations',
      exec: 'publisher',
      vus: 1,
      iterations: 1,
      startTime: `${RAMP_S}s`,
      maxDuration: `${DURATION_S + 30}s`,
    },
  },
  thresholds: {
    symphonic_latency: ['p(50)<100', 'p(99)<500'],
    symphonic_subscribed: ['rate>0.99'],
    symphonic_gaps: ['count==0'],
    symphonic_errors: ['count==0'],
    symphonic_received: ['count>0'],
    ws_connecting: ['p(95)<1000'],
  },
};

function hello() {
  const frame = { t: 'hello', v: 1, client: 'k6' };
  if (TOKEN) frame.token = TOKEN;
  return JSON.stringify(frame);
}

function parse(data) {
  try {
    return JSON.parse(data);
  } catch (e) {
    errors.add(1, { reason: 'undecodable' });
    return null;
  }
}

export function subscriber() {
  // Stay until the publisher is done, plus a little for the last messages to arrive.
  const holdMs = (RAMP_S + DURATION_S + 5) * 1000;
  let lastSeq = -1;
  let isSubscribed = false;
  const res = ws.connect(URL, WS_PARAMS, (socket) => {
    socket.on('open', () => socket.send(hello()));
    socket.on('message', (data) => {
      const f = parse(data);
      if (!f) return;
      if (f.t === 'msg' && f.topic === TOPIC) {
        received.add(1);
        if (f.data && typeof f.data.sentAt === 'number') latency.add(Date.now() - f.data.sentAt);
        if (lastSeq >= 0 && f.prev !== lastSeq) gaps.add(1);
        lastSeq = f.seq;
      } else if (f.t === 'welcome') {
        socket.send(JSON.stringify({ t: 'sub', id: 1, topic: TOPIC }));
      } else if (f.t === 'subscribed') {
        isSubscribed = true;
        subscribed.add(1);
        lastSeq = f.seq;
      } else if (f.t === 'error') {
        errors.add(1, { code: String(f.code) });
        console.warn(`subscriber error ${f.code}: ${f.message}`);
      }
    });
    socket.on('close', () => {
      if (!isSubscribed) subscribed.add(0);
    });
    socket.on('error', () => errors.add(1, { reason: 'socket' }));
    socket.setTimeout(() => socket.close(), holdMs);
  });
  check(res, { 'upgraded (101)': (r) => r && r.status === 101 });
}

/** Messages per tick: ticks of at least 10 ms, so high rates go out in small batches. */
function schedule() {
  const tickMs = Math.max(10, Math.floor(1000 / Math.max(PUBLISH_RATE, 0.001)));
  return { tickMs, perTick: Math.max(1, Math.round((PUBLISH_RATE * tickMs) / 1000)) };
}

function pubFrame(i) {
  return { topic: TOPIC, kind: 'event', data: { sentAt: Date.now(), i: i, pad: PAD } };
}

export function publisher() {
  if (API_KEY) return httpPublisher();
  const { tickMs, perTick } = schedule();
  let i = 0;
  const res = ws.connect(URL, WS_PARAMS, (socket) => {
    socket.on('open', () => socket.send(hello()));
    socket.on('message', (data) => {
      const f = parse(data);
      if (!f) return;
      if (f.t === 'welcome') {
        let done = false;
        socket.setInterval(() => {
          for (let k = 0; k < perTick && !done; k++) {
            const frame = pubFrame(i++);
            frame.t = 'pub'; // no id: fire-and-forget, errors still come back
            socket.send(JSON.stringify(frame));
            published.add(1);
          }
        }, tickMs);
        socket.setTimeout(() => {
          done = true; // a tick due at the same moment must not count a message it cannot send
          socket.close();
        }, DURATION_S * 1000);
      } else if (f.t === 'error') {
        errors.add(1, { code: String(f.code) });
        console.warn(`publisher error ${f.code}: ${f.message}`);
      }
    });
    socket.on('error', () => errors.add(1, { reason: 'socket' }));
  });
  check(res, { 'publisher upgraded (101)': (r) => r && r.status === 101 });
}

/** Publishing through the HTTP API instead (one request per message, so for modest rates). */
function httpPublisher() {
  const { tickMs, perTick } = schedule();
  const params = { headers: { Authorization: `Bearer ${API_KEY}`, 'Content-Type': 'application/json' } };
  const end = Date.now() + DURATION_S * 1000;
  let i = 0;
  let next = Date.now();
  while (Date.now() < end) {
    for (let k = 0; k < perTick; k++) {
      const r = http.post(`${HTTP_URL}/api/publish`, JSON.stringify(pubFrame(i++)), params);
      if (r.status === 200) published.add(1);
      else errors.add(1, { reason: `http ${r.status}` });
    }
    next += tickMs;
    const wait = next - Date.now();
    if (wait > 0) sleep(wait / 1000); // k6's sleep takes seconds
  }
}
