/**
 * The baseline: a bare uWebSockets.js pub/sub server with no protocol, no validation, no bus.
 * What the gateway is measured against. Run as its own process:
 *   PORT=9001 HOST=127.0.0.1 node --import tsx loadtest/bench/bare-server.ts
 *
 *   /ws?sub=<topic>  a subscriber: subscribed on open, then told so with a text frame "subscribed".
 *   /ws?pub=<topic>  a publisher: every message it sends is republished as is to <topic>.
 *
 * Publishing happens from a setImmediate batch, outside uWS callbacks: calling app.publish from
 * inside the `message` handler collapses under load (measured on this machine: ~1M deliveries/s
 * falls to 0.15M/s and does not recover), so doing it there would make the baseline unfairly weak.
 */
import uWS from 'uWebSockets.js';

const host = process.env.HOST ?? '127.0.0.1';
const port = Number(process.env.PORT ?? 0);
/** Per-socket outbound buffer limit; past it uWS drops messages for that socket (counted as loss). */
const maxBackpressure = Number(process.env.BENCH_MAX_BACKPRESSURE ?? 1024 * 1024);

interface SocketData {
  sub: string | null;
  pub: string | null;
}

const app = uWS.App();
// Received payloads waiting for the next flush, with their topics; bounded so a stalled flush cannot grow it forever.
const MAX_QUEUE = 100_000;
const queue: { topic: string; data: ArrayBuffer }[] = [];
let flushScheduled = false;
let dropped = 0;

function flush(): void {
  flushScheduled = false;
  const batch = queue.splice(0, queue.length);
  for (const m of batch) app.publish(m.topic, m.data, true);
}

app.ws<SocketData>('/ws', {
  compression: uWS.DISABLED,
  maxPayloadLength: 64 * 1024,
  maxBackpressure,
  closeOnBackpressureLimit: false,
  idleTimeout: 120,
  upgrade(res, req, context) {
    const q = new URLSearchParams(req.getQuery() ?? '');
    const protocol = req.getHeader('sec-websocket-protocol').split(',')[0]?.trim() ?? '';
    res.upgrade<SocketData>(
      { sub: q.get('sub'), pub: q.get('pub') },
      req.getHeader('sec-websocket-key'),
      protocol,
      req.getHeader('sec-websocket-extensions'),
      context,
    );
  },
  open(ws) {
    const { sub } = ws.getUserData();
    if (sub) {
      ws.subscribe(sub);
      ws.send('subscribed', false);
    }
  },
  message(ws, message) {
    const { pub } = ws.getUserData();
    if (!pub) return;
    if (queue.length >= MAX_QUEUE) {
      dropped++;
      return;
    }
    // The ArrayBuffer is only valid during this callback: copy it.
    queue.push({ topic: pub, data: message.slice(0) });
    if (!flushScheduled) {
      flushScheduled = true;
      setImmediate(flush);
    }
  },
});

app.listen(host, port, (token) => {
  if (!token) {
    console.error(JSON.stringify({ msg: 'listen failed', host, port }));
    process.exit(1);
  }
  console.log(JSON.stringify({ msg: 'listening', host, port: uWS.us_socket_local_port(token), server: 'bare-uws' }));
});

for (const sig of ['SIGTERM', 'SIGINT'] as const) {
  process.on(sig, () => {
    if (dropped) console.error(JSON.stringify({ msg: 'publish queue overflowed', dropped }));
    app.close();
    process.exit(0);
  });
}
