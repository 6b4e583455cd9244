/**
 * Chat: USERS sockets spread over ROOMS topics; every VU subscribes to its room and publishes
 * MSG_RATE messages per second into it (`pub` with an id, so each is acknowledged). Measures
 * publish-to-ack and publish-to-receive latency, and checks every member's stream of its room by
 * the protocol's rules (gaps, duplicates). Options and how to read the result: docs/loadtest.md.
 *
 *   k6 run -e SYMPHONIC_URL=ws://127.0.0.1:9001/ws -e USERS=200 -e ROOMS=20 -e MSG_RATE=1 loadtest/k6/chat.js
 *
 * The gateway's default per-connection limit is 100 frames/s (`limits.connRatePerSec`): keep
 * MSG_RATE below it, or raise the limit for the test.
 */
import { WebSocket } from 'k6/experimental/websockets';
import { Counter, Rate, Trend } from 'k6/metrics';
import { SUMMARY_TREND_STATS, URL, envNumber, summary, thresholds, tokenFor } from './lib/k6-common.js';
import { SUBPROTOCOL, closeCodeOf, createTopicTracker, helloFrame, parseFrame, pubFrame, subFrame } from './lib/protocol.js';

const USERS = envNumber('USERS', 100);
const ROOMS = Math.max(1, envNumber('ROOMS', 10));
const MSG_RATE = envNumber('MSG_RATE', 1);
const DURATION_S = envNumber('DURATION_S', 30);
const RAMP_S = envNumber('RAMP_S', 10);
const DRAIN_S = envNumber('DRAIN_S', 5);

const ackLatency = new Trend('symphonic_ack_latency', true);
const latency = new Trend('symphonic_latency', true);
const acked = new Counter('symphonic_acked');
const received = new Counter('symphonic_received');
const publishFailed = new Counter('symphonic_publish_failed');
const subscribed = new Rate('symphonic_subscribed');
const gaps = new Counter('symphonic_gaps');
const duplicates = new Counter('symphonic_duplicates');
const errors = new Counter('symphonic_errors');
const closes = new Counter('symphonic_closes');
const connectFailed = new Rate('symphonic_connect_failed');

export const options = {
  scenarios: {
    users: { executor: 'per-vu-iterations', exec: 'user', vus: USERS, iterations: 1, maxDuration: `${RAMP_S + DURATION_S + DRAIN_S + 30}s` },
  },
  summaryTrendStats: SUMMARY_TREND_STATS,
  thresholds: thresholds({
    symphonic_subscribed: ['rate>=1'],
    symphonic_connect_failed: ['rate==0'],
    symphonic_acked: ['count>0'],
    symphonic_received: ['count>0'],
    symphonic_publish_failed: ['count==0'],
    symphonic_gaps: ['count==0'],
    symphonic_duplicates: ['count==0'],
    symphonic_errors: ['count==0'],
    symphonic_closes: ['count==0'],
    symphonic_ack_latency: ['p(99)<500'],
    symphonic_latency: ['p(99)<500'],
  }),
};

export function setup() {
  return { prefix: __ENV.TOPIC_PREFIX || `k6.chat.${Date.now()}` };
}

export function user(run) {
  const vu = __VU;
  const room = `${run.prefix}.${vu % ROOMS}`;
  const t = createTopicTracker(room);
  const sentAt = new Map();
  let id = 1;
  let opened = false;
  let finished = false;
  setTimeout(
    () => {
      const ws = new WebSocket(URL, SUBPROTOCOL);
      let safety;
      const finish = () => {
        if (finished) return;
        finished = true;
        clearTimeout(safety); // a pending timer would keep the VU alive
        subscribed.add(t.subscribes > 0);
        gaps.add(t.gaps);
        duplicates.add(t.duplicates);
        ws.close();
      };
      ws.onopen = () => {
        opened = true;
        connectFailed.add(false);
        ws.send(helloFrame({ client: 'k6-chat', token: tokenFor('k6-chat', vu) }));
      };
      ws.onmessage = (e) => {
        const f = parseFrame(e.data);
        if (!f) return errors.add(1, { reason: 'undecodable' });
        if (f.t === 'welcome') {
          t.startSubscribe();
          ws.send(subFrame(id++, room));
        } else if (f.t === 'ack') {
          acked.add(1);
          ackLatency.add(Date.now() - sentAt.get(f.id));
          sentAt.delete(f.id);
        } else if (f.t === 'error' && sentAt.has(f.id)) {
          publishFailed.add(1, { code: String(f.code) });
          sentAt.delete(f.id);
        } else {
          if (f.t === 'error') errors.add(1, { code: String(f.code) });
          if (f.topic === room) {
            const wasSubscribing = t.phase === 'subscribing';
            for (const m of t.onFrame(f)) {
              received.add(1);
              if (m.data && typeof m.data.sentAt === 'number') latency.add(Date.now() - m.data.sentAt);
            }
            if (wasSubscribing && t.phase === 'live') startPublishing();
          }
        }
      };
      ws.onerror = (e) => {
        const code = closeCodeOf(e);
        if (!opened) connectFailed.add(true);
        else if (code) closes.add(1, { code: String(code) });
        else errors.add(1, { reason: 'socket' });
      };
      ws.onclose = finish;
      function startPublishing() {
        if (MSG_RATE <= 0) return;
        const stopAt = Date.now() + DURATION_S * 1000;
        const tick = setInterval(() => {
          if (Date.now() >= stopAt) {
            clearInterval(tick);
            setTimeout(finish, DRAIN_S * 1000);
            return;
          }
          const n = id++;
          sentAt.set(n, Date.now());
          ws.send(pubFrame(n, room, 'event', { from: vu, sentAt: Date.now() }));
        }, 1000 / MSG_RATE);
      }
      safety = setTimeout(finish, (RAMP_S + DURATION_S + DRAIN_S + 10) * 1000);
    },
    ((vu - 1) % USERS) * ((RAMP_S * 1000) / Math.max(1, USERS)),
  );
}

export const handleSummary = summary('chat');
