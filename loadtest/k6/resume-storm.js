/**
 * Resume storm: CLIENTS sockets subscribed to TOPICS while a publisher keeps publishing; at
 * DROP_AT_S every client drops its socket at once and comes straight back with its session
 * (`hello.session`) and its positions (`hello.restore`, or `sub` + `since` with RESTORE=0).
 * Counts resumed sessions, recovered subscriptions and lost messages (a resume answered
 * `recovered: false`, or a gap); measures the time from the drop to all topics resubscribed.
 * Options and how to read the result: docs/loadtest.md.
 *
 *   k6 run -e SYMPHONIC_URL=ws://127.0.0.1:9001/ws -e CLIENTS=500 -e API_KEY=secret loadtest/k6/resume-storm.js
 *
 * With API_KEY the publisher uses POST /api/publish; without it, a WebSocket `pub` (client
 * publishing must be allowed, and `limits.connRatePerSec`, default 100/s, bounds its rate).
 */
import { WebSocket } from 'k6/experimental/websockets';
import { sleep } from 'k6';
import { Counter, Rate, Trend } from 'k6/metrics';
import { SUMMARY_TREND_STATS, URL, envNumber, httpPublish, summary, thresholds, tokenFor } from './lib/k6-common.js';
import { SUBPROTOCOL, closeCodeOf, createTopicTracker, helloFrame, parseFrame, pubFrame, subFrame } from './lib/protocol.js';

const CLIENTS = envNumber('CLIENTS', 100);
const TOPIC_COUNT = Math.max(1, envNumber('TOPICS', 3));
const PUBLISH_RATE = envNumber('PUBLISH_RATE', 20);
const RAMP_S = envNumber('RAMP_S', 10);
const DROP_AT_S = envNumber('DROP_AT_S', RAMP_S + 5);
const AFTER_S = envNumber('AFTER_S', 10);
const RESTORE = envNumber('RESTORE', 1) !== 0;

const resumed = new Rate('symphonic_resumed');
const recovered = new Rate('symphonic_recovered');
const resubscribeTime = new Trend('symphonic_resubscribe_time', true);
const lost = new Counter('symphonic_lost');
const gaps = new Counter('symphonic_gaps');
const duplicates = new Counter('symphonic_duplicates');
const received = new Counter('symphonic_received');
const errors = new Counter('symphonic_errors');
const closes = new Counter('symphonic_closes');
const connectFailed = new Rate('symphonic_connect_failed');
const acked = new Counter('symphonic_acked');
const publishFailed = new Counter('symphonic_publish_failed');

const TOTAL_S = DROP_AT_S + AFTER_S;

export const options = {
  scenarios: {
    clients: { executor: 'per-vu-iterations', exec: 'client', vus: CLIENTS, iterations: 1, maxDuration: `${TOTAL_S + 30}s` },
    publisher: { executor: 'per-vu-iterations', exec: 'publisher', vus: 1, iterations: 1, maxDuration: `${TOTAL_S + 30}s` },
  },
  summaryTrendStats: SUMMARY_TREND_STATS,
  thresholds: thresholds({
    symphonic_resumed: ['rate>=1'],
    symphonic_recovered: ['rate>=1'],
    symphonic_lost: ['count==0'],
    symphonic_gaps: ['count==0'],
    symphonic_duplicates: ['count==0'],
    symphonic_errors: ['count==0'],
    symphonic_closes: ['count==0'],
    symphonic_connect_failed: ['rate==0'],
    symphonic_received: ['count>0'],
    symphonic_publish_failed: ['count==0'],
    symphonic_resubscribe_time: ['p(99)<5000'],
  }),
};

export function setup() {
  const prefix = __ENV.TOPIC_PREFIX || `k6.resume.${Date.now()}`;
  return { topics: Array.from({ length: TOPIC_COUNT }, (_, i) => `${prefix}.${i}`), dropAt: Date.now() + DROP_AT_S * 1000 };
}

export function client(run) {
  const vu = __VU;
  const trackers = run.topics.map((t) => createTopicTracker(t));
  const byTopic = {};
  for (const t of trackers) byTopic[t.topic] = t;
  let session;
  let droppedAt = 0;
  let reqId = 1;
  let finished = false;
  let ws;

  const connect = (resume) => {
    let opened = false;
    ws = new WebSocket(URL, SUBPROTOCOL);
    const me = ws;
    ws.onopen = () => {
      opened = true;
      connectFailed.add(false);
      const restore = {};
      if (resume && RESTORE) for (const t of trackers) if (t.since()) restore[t.topic] = t.since();
      if (resume && RESTORE) for (const t of trackers) t.startSubscribe();
      me.send(
        helloFrame({
          client: 'k6-resume',
          token: tokenFor('k6-resume', vu),
          session: resume ? session : undefined,
          restore: resume && RESTORE ? restore : undefined,
        }),
      );
    };
    ws.onmessage = (e) => {
      const f = parseFrame(e.data);
      if (!f) return errors.add(1, { reason: 'undecodable' });
      if (f.t === 'welcome') {
        if (resume) resumed.add(f.resumed === true);
        session = { id: f.session, key: f.key };
        const restoring = resume && RESTORE && f.resumed ? new Set(f.topics || []) : new Set();
        for (const t of trackers) {
          if (restoring.has(t.topic)) continue;
          t.startSubscribe();
          me.send(subFrame(reqId++, t.topic, resume ? t.since() : undefined));
        }
        return;
      }
      if (f.t === 'error') errors.add(1, { code: String(f.code) });
      const t = f.topic && byTopic[f.topic];
      if (!t) return;
      const before = t.subscribes;
      for (const _m of t.onFrame(f)) received.add(1);
      if (f.t === 'subscribed' && droppedAt && t.subscribes > before) {
        recovered.add(f.recovered === true);
        if (!f.recovered) lost.add(1, { topic: t.topic });
        if (trackers.every((x) => x.phase === 'live')) resubscribeTime.add(Date.now() - droppedAt);
      }
    };
    ws.onerror = (e) => {
      // The socket dropped on purpose may be told 4004 (its session resumed on the new one): expected.
      if (me !== ws) return;
      const code = closeCodeOf(e);
      if (!opened) connectFailed.add(true);
      else if (code) closes.add(1, { code: String(code) });
    };
  };

  setTimeout(() => connect(false), ((vu - 1) % CLIENTS) * ((RAMP_S * 1000) / Math.max(1, CLIENTS)));
  // Everyone drops at the same moment, and comes straight back.
  setTimeout(
    () => {
      droppedAt = Date.now();
      for (const t of trackers) t.disconnected();
      ws.close();
      connect(true);
    },
    Math.max(0, run.dropAt - Date.now()),
  );
  setTimeout(() => {
    if (finished) return;
    finished = true;
    for (const t of trackers) {
      gaps.add(t.gaps);
      duplicates.add(t.duplicates);
    }
    ws.close();
  }, TOTAL_S * 1000);
}

/** PUBLISH_RATE messages/s in all, round robin over the topics, until the end. */
export function publisher(run) {
  const end = Date.now() + TOTAL_S * 1000;
  const started = Date.now();
  let n = 0;
  if (__ENV.API_KEY) {
    while (Date.now() < end) {
      const due = started + (n * 1000) / PUBLISH_RATE - Date.now();
      if (due > 0) sleep(due / 1000);
      const topic = run.topics[n % run.topics.length];
      n++;
      const r = httpPublish(topic, 'patch', { n, sentAt: Date.now() }, `${topic}.${n}`);
      if (r.status === 200) acked.add(1);
      else publishFailed.add(1, { status: String(r.status) });
    }
    return;
  }
  const ws = new WebSocket(URL, SUBPROTOCOL);
  ws.onopen = () => ws.send(helloFrame({ client: 'k6-resume-publisher', token: tokenFor('k6-pub', 0) }));
  ws.onmessage = (e) => {
    const f = parseFrame(e.data);
    if (!f) return;
    if (f.t === 'ack') acked.add(1);
    else if (f.t === 'error') publishFailed.add(1, { code: String(f.code) });
    else if (f.t === 'welcome') {
      const tick = setInterval(() => {
        if (Date.now() >= end) {
          clearInterval(tick);
          ws.close();
          return;
        }
        const due = Math.floor(((Date.now() - started) * PUBLISH_RATE) / 1000);
        while (n < due) {
          const topic = run.topics[n % run.topics.length];
          n++;
          ws.send(pubFrame(n, topic, 'patch', { n, sentAt: Date.now() }));
        }
      }, 10);
    }
  };
}

export const handleSummary = summary('resume-storm');
