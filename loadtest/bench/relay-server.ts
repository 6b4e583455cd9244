/**
 * The NATS baseline: a bare uWebSockets.js + NATS relay. One core NATS subscription on the
 * stream's RePublish subject of the bench topic; every message it delivers is sent to the topic's
 * WebSocket subscribers with `app.publish(topic, payload, true)`, from the NATS callback (outside
 * any uWS callback, so no batching is needed, unlike bare-server.ts). No protocol, no envelope
 * decoding, no sequence checks. What the gateway on the NATS engine is measured against:
 *   PORT=9001 HOST=127.0.0.1 NATS_URL=nats://127.0.0.1:4222 NATS_SUBJECT=symbench.out.bench.fanout \
 *   TOPIC=bench.fanout node --import tsx loadtest/bench/relay-server.ts
 *
 *   /ws?sub=<topic>  a subscriber: subscribed on open, then told so with a text frame "subscribed".
 *
 * Compression off, 1 MiB backpressure per socket (the gateway's default), as bare-server.ts.
 */
import { connect } from 'nats';
import uWS from 'uWebSockets.js';

const host = process.env.HOST ?? '127.0.0.1';
const port = Number(process.env.PORT ?? 0);
const natsUrl = process.env.NATS_URL ?? 'nats://127.0.0.1:4222';
const subject = process.env.NATS_SUBJECT ?? '';
const topic = process.env.TOPIC ?? '';
const maxBackpressure = Number(process.env.BENCH_MAX_BACKPRESSURE ?? 1024 * 1024);
if (!subject || !topic) {
  console.error(JSON.stringify({ msg: 'NATS_SUBJECT and TOPIC are required' }));
  process.exit(1);
}

interface SocketData {
  sub: string | null;
}

const app = uWS.App();

app.ws<SocketData>('/ws', {
  compression: uWS.DISABLED,
  maxPayloadLength: 64 * 1024,
  maxBackpressure,
  closeOnBackpressureLimit: false,
  idleTimeout: 120,
  upgrade(res, req, context) {
    const q = new URLSearchParams(req.getQuery() ?? '');
    const protocol = req.getHeader('sec-websocket-protocol').split(',')[0]?.trim() ?? '';
    res.upgrade<SocketData>({ sub: q.get('sub') }, req.getHeader('sec-websocket-key'), protocol, req.getHeader('sec-websocket-extensions'), context);
  },
  open(ws) {
    const { sub } = ws.getUserData();
    if (sub) {
      ws.subscribe(sub);
      ws.send('subscribed', false);
    }
  },
});

// No reconnect limit worth speaking of for a bench run; the harness owns the nats-server.
const nc = await connect({ servers: natsUrl, name: 'symphonic-bench-relay', maxReconnectAttempts: -1 });
nc.subscribe(subject, {
  callback(err, msg) {
    if (err) return;
    // msg.data is a view into the NATS client's read buffer; uWS copies what it sends.
    app.publish(topic, msg.data, true);
  },
});
await nc.flush(); // the subscription is registered with the server before we say we listen

app.listen(host, port, (token) => {
  if (!token) {
    console.error(JSON.stringify({ msg: 'listen failed', host, port }));
    process.exit(1);
  }
  console.log(JSON.stringify({ msg: 'listening', host, port: uWS.us_socket_local_port(token), server: 'uws-nats-relay', subject }));
});

for (const sig of ['SIGTERM', 'SIGINT'] as const) {
  process.on(sig, () => {
    app.close();
    void nc.close().finally(() => process.exit(0));
    setTimeout(() => process.exit(0), 1000).unref();
  });
}
