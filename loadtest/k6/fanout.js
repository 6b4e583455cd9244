/**
 * Fan-out: SUBSCRIBERS sockets on one topic, one publisher, and every subscriber's delivery
 * checked against what the publisher had acknowledged. Options and how to read the result:
 * docs/loadtest.md.
 *
 *   k6 run -e SYMPHONIC_URL=ws://127.0.0.1:9001/ws -e SUBSCRIBERS=500 -e PUBLISH_RATE=20 loadtest/k6/fanout.js
 *
 * Timeline: subscribers connect one after another over RAMP_S seconds; publishing starts at
 * RAMP_S + SETTLE_S and lasts DURATION_S; then the publisher publishes an end marker carrying how
 * many messages were acknowledged, and every subscriber compares what it got with that.
 */
import { sleep } from 'k6';
import { WebSocket } from 'k6/experimental/websockets';
import { Counter, Rate, Trend } from 'k6/metrics';
import { SUMMARY_TREND_STATS, URL, envNumber, httpPublish, summary, thresholds, tokenFor } from './lib/k6-common.js';
import { SUBPROTOCOL, closeCodeOf, createTopicTracker, helloFrame, parseFrame, pubFrame, subFrame } from './lib/protocol.js';

const SUBSCRIBERS = envNumber('SUBSCRIBERS', 100);
const PUBLISH_RATE = envNumber('PUBLISH_RATE', 10);
const DURATION_S = envNumber('DURATION_S', 30);
const RAMP_S = envNumber('RAMP_S', 10);
const SETTLE_S = envNumber('SETTLE_S', 2);
const DRAIN_S = envNumber('DRAIN_S', 10);
const PAD = 'x'.repeat(envNumber('PAD_BYTES', 40));
const USE_HTTP = Boolean(__ENV.API_KEY);

const latency = new Trend('symphonic_latency', true);
const delivered = new Rate('symphonic_delivered');
const subscribed = new Rate('symphonic_subscribed');
const ended = new Rate('symphonic_end_seen');
const received = new Counter('symphonic_received');
const acked = new Counter('symphonic_acked');
const publishFailed = new Counter('symphonic_publish_failed');
const gaps = new Counter('symphonic_gaps');
const duplicates = new Counter('symphonic_duplicates');
const errors = new Counter('symphonic_errors');
const closes = new Counter('symphonic_closes');
const connectFailed = new Rate('symphonic_connect_failed');
const ackLatency = new Trend('symphonic_ack_latency', true);

export const options = {
  scenarios: {
    subscribers: {
      executor: 'per-vu-iterations',
      exec: 'subscriber',
      vus: SUBSCRIBERS,
      iterations: 1,
      maxDuration: `${RAMP_S + SETTLE_S + DURATION_S + DRAIN_S + 30}s`,
    },
    publisher: {
      executor: 'per-vu-iterations',
      exec: 'publisher',
      vus: 1,
      iterations: 1,
      startTime: `${RAMP_S + SETTLE_S}s`,
      maxDuration: `${DURATION_S + DRAIN_S + 30}s`,
    },
  },
  summaryTrendStats: SUMMARY_TREND_STATS,
  thresholds: thresholds({
    // Every acknowledged message reached every subscriber owed it.
    symphonic_delivered: [{ threshold: 'rate>=1', abortOnFail: false }],
    symphonic_subscribed: [{ threshold: 'rate>=1', abortOnFail: true, delayAbortEval: `${RAMP_S + 5}s` }],
    symphonic_end_seen: ['rate>=1'],
    symphonic_connect_failed: ['rate==0'],
    symphonic_gaps: ['count==0'],
    symphonic_duplicates: ['count==0'],
    symphonic_errors: ['count==0'],
    symphonic_closes: ['count==0'],
    symphonic_publish_failed: ['count==0'],
    symphonic_acked: ['count>0'],
    symphonic_latency: ['p(50)<100', 'p(99)<500'],
  }),
};

/** One topic per run, so a second run never reads the first one's messages. */
export function setup() {
  return { topic: __ENV.TOPIC || `k6.fanout.${Date.now()}`, publishAt: Date.now() + (RAMP_S + SETTLE_S) * 1000 - 500 };
}

function open(onOpen, onFrame, onGone) {
  const ws = new WebSocket(URL, SUBPROTOCOL);
  let opened = false;
  ws.onopen = () => {
    opened = true;
    connectFailed.add(false);
    onOpen(ws);
  };
  ws.onmessage = (e) => {
    const f = parseFrame(e.data);
    if (!f) return errors.add(1, { reason: 'undecodable' });
    if (f.t === 'error') errors.add(1, { code: String(f.code) });
    onFrame(ws, f);
  };
  ws.onerror = (e) => {
    const code = closeCodeOf(e);
    if (!opened) connectFailed.add(true);
    else if (code) closes.add(1, { code: String(code) });
    else errors.add(1, { reason: 'socket' });
  };
  ws.onclose = () => onGone && onGone();
  return ws;
}

export function subscriber(run) {
  const t = createTopicTracker(run.topic);
  const vu = __VU;
  let total = -1;
  let finished = false;
  let deadline;
  const finish = (ws) => {
    if (finished) return;
    finished = true;
    clearTimeout(deadline); // a pending timer would keep the VU alive
    subscribed.add(t.subscribes > 0);
    ended.add(total >= 0);
    gaps.add(t.gaps);
    duplicates.add(t.duplicates);
    if (total >= 0) {
      const d = t.delivery(total, t.subscribedAt > 0 && t.subscribedAt < run.publishAt);
      for (let i = 0; i < d.owed; i++) delivered.add(i < d.got);
      if (d.owed === 0) delivered.add(true);
    } else {
      delivered.add(false); // never saw the end: what it was owed is unknown, and it did not get it all
    }
    ws.close();
  };
  // A linear ramp: subscriber k connects at k / SUBSCRIBERS of RAMP_S.
  setTimeout(
    () => {
      const ws = open(
        (s) => s.send(helloFrame({ client: 'k6-fanout', token: tokenFor('k6-sub', vu) })),
        (s, f) => {
          if (f.t === 'welcome') {
            t.startSubscribe();
            s.send(subFrame(1, run.topic));
          } else if (f.topic === run.topic) {
            for (const m of t.onFrame(f)) {
              received.add(1);
              if (m.data && typeof m.data.sentAt === 'number') latency.add(Date.now() - m.data.sentAt);
              if (m.data && typeof m.data.end === 'number') {
                total = m.data.end;
                finish(s);
              }
            }
          }
        },
        () => finish(ws),
      );
      deadline = setTimeout(() => finish(ws), Math.max(1000, run.publishAt - Date.now() + (DURATION_S + DRAIN_S) * 1000));
    },
    ((vu - 1) % SUBSCRIBERS) * ((RAMP_S * 1000) / Math.max(1, SUBSCRIBERS)),
  );
}

/** Sends message n at n / PUBLISH_RATE seconds (any rate, no rounding), then the end marker. */
export function publisher(run) {
  const startedAt = Date.now();
  const count = Math.round(PUBLISH_RATE * DURATION_S);
  let sent = 0;
  let ackedCount = 0;
  let answered = 0;
  const sentAt = new Map();
  const data = (n) => ({ n, sentAt: Date.now(), pad: PAD });

  if (USE_HTTP) {
    while (sent < count) {
      const due = startedAt + (sent * 1000) / PUBLISH_RATE - Date.now();
      if (due > 0) sleep(due / 1000);
      sent++;
      const t0 = Date.now();
      const r = httpPublish(run.topic, 'event', data(sent), `${run.topic}.${sent}`);
      if (r.status === 200) {
        ackedCount++;
        acked.add(1);
        ackLatency.add(Date.now() - t0);
      } else publishFailed.add(1, { status: String(r.status) });
    }
    httpPublish(run.topic, 'event', { end: ackedCount }, `${run.topic}.end`);
    return;
  }

  const ws = open(
    (s) => s.send(helloFrame({ client: 'k6-publisher', token: tokenFor('k6-pub', 0) })),
    (s, f) => {
      if (f.t === 'welcome') {
        const tick = setInterval(() => {
          const due = Math.min(count, Math.floor(((Date.now() - startedAt) * PUBLISH_RATE) / 1000) + 1);
          while (sent < due) {
            sent++;
            sentAt.set(sent, Date.now());
            s.send(pubFrame(sent, run.topic, 'event', data(sent)));
          }
          if (sent >= count) clearInterval(tick);
        }, 10);
      } else if (f.t === 'ack' && f.id <= count) {
        answered++;
        ackedCount++;
        acked.add(1);
        ackLatency.add(Date.now() - sentAt.get(f.id));
      } else if (f.t === 'error' && typeof f.id === 'number' && f.id <= count) {
        answered++;
        publishFailed.add(1, { code: String(f.code) });
      } else if (f.t === 'ack' && f.id === count + 1) {
        s.close();
      }
      if (answered === count && sent === count) {
        answered++; // once
        s.send(pubFrame(count + 1, run.topic, 'event', { end: ackedCount }));
      }
    },
  );
  // Bounded: whatever happens, the publisher stops.
  const stop = setTimeout(() => ws.close(), (DURATION_S + DRAIN_S) * 1000);
  ws.addEventListener('close', () => clearTimeout(stop));
}

export const handleSummary = summary('fanout');
