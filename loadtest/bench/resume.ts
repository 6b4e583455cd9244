/**
 * Resume benchmark: N clients on gateway A (NATS engine) while a publisher keeps publishing; A is
 * killed with SIGKILL; every client reconnects to gateway B, resumes its session and its
 * subscription from its last position. Reports the time until all N are resubscribed with
 * `recovered: true`, per-client resume latency, and checks that every client ends with exactly
 * the published sequence (no loss, no duplicates).
 *
 *   npx tsx loadtest/bench/resume.ts [--clients 1000] [--rate 200] [--restore] [--out file.json]
 *
 * --restore: resume with `hello.restore` (the gateway re-subscribes the session's topic from the
 * position in the hello) instead of `hello` then `sub` with `since`.
 */
import { writeFileSync } from 'node:fs';
import WebSocket from 'ws';
import { msgpackCodec, SUBPROTOCOL_MSGPACK, type ServerFrame } from '../../protocol/index.ts';
import { startGatewayProcess } from '../../test/support/gateway-process.ts';
import { startNatsServer } from '../../test/support/nats-server.ts';

const arg = (name: string, fallback: string) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? process.argv[i + 1]! : fallback;
};
const CLIENTS = Number(arg('clients', '1000'));
const RATE = Number(arg('rate', '200'));
const OUT = arg('out', '');
const RESTORE = process.argv.includes('--restore');
const TOPIC = 'bench.resume';
const KEY = 'bench-key-0123456789';
const DEADLINE_MS = 120_000;

interface Client {
  ws: WebSocket;
  session: { id: string; key: string };
  epoch: string;
  last: number;
  seen: number[];
  dups: number;
  gaps: number;
  killedAt: number;
  /** When the welcome arrived (session attached). */
  helloAt: number;
  resumedAt: number;
  recovered: boolean | null;
  sessionResumed: boolean;
}

function percentile(sorted: number[], p: number): number {
  return sorted.length ? sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]! : NaN;
}

/** Opens a socket, says hello (resuming `session` if given) and subscribes from `since`. */
function open(c: Client, url: string, since: { seq: number; epoch: string } | undefined, onReady: () => void): void {
  const ws = new WebSocket(url, SUBPROTOCOL_MSGPACK);
  ws.binaryType = 'nodebuffer';
  c.ws = ws;
  const buffered: Extract<ServerFrame, { t: 'msg' }>[] = [];
  let subscribed = false;
  const apply = (seq: number, prev: number, data: unknown) => {
    if (seq <= c.last) return void c.dups++;
    if (c.last !== 0 && prev !== c.last) c.gaps++;
    c.last = seq;
    c.seen.push(data as number);
  };
  const restore = RESTORE && c.session.id !== '' && since !== undefined;
  ws.on('open', () =>
    ws.send(
      msgpackCodec.encode({
        t: 'hello',
        v: 1,
        ...(c.session.id ? { session: c.session } : {}),
        ...(restore ? { restore: { since: { [TOPIC]: since } } } : {}),
      }),
    ),
  );
  ws.on('message', (buf: Buffer) => {
    const f = msgpackCodec.decode(buf) as ServerFrame;
    if (f.t === 'welcome') {
      c.session = { id: f.session, key: f.key };
      c.sessionResumed = f.resumed;
      c.helloAt = Date.now();
      // Restored by the gateway when the session resumed; otherwise (or without --restore) subscribe.
      if (!restore || !f.resumed) ws.send(msgpackCodec.encode({ t: 'sub', id: 1, topic: TOPIC, ...(since ? { since } : {}) }));
    } else if (f.t === 'subscribed') {
      c.epoch = f.epoch;
      if (since) c.recovered = f.recovered;
      for (const m of f.replay ?? []) apply(m.seq, m.prev, m.data);
      if (!since || !f.recovered) c.last = Math.max(c.last, f.seq);
      for (const m of buffered) apply(m.seq, m.prev, m.data);
      subscribed = true;
      onReady();
    } else if (f.t === 'msg') {
      if (subscribed) apply(f.seq, f.prev, f.data);
      else buffered.push(f);
    }
  });
  ws.on('error', () => {});
}

async function main(): Promise<void> {
  const nats = await startNatsServer();
  const config = {
    bus: { engine: 'nats', nats: { servers: [nats.url], prefix: `resume${process.pid}` } },
    api: { keys: [KEY] },
    limits: { connRatePerSec: 0, userRatePerSec: 0 },
    log: { level: 'warn' },
  };
  const [a, b] = await Promise.all([startGatewayProcess({ name: 'gw-a', config }), startGatewayProcess({ name: 'gw-b', config })]);
  const clients: Client[] = [];
  try {
    let ready = 0;
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`only ${ready}/${CLIENTS} clients subscribed`)), DEADLINE_MS);
      for (let i = 0; i < CLIENTS; i++) {
        const c: Client = {
          ws: null as never,
          session: { id: '', key: '' },
          epoch: '',
          last: 0,
          seen: [],
          dups: 0,
          gaps: 0,
          killedAt: 0,
          resumedAt: 0,
          helloAt: 0,
          recovered: null,
          sessionResumed: false,
        };
        clients.push(c);
        open(c, a.url, undefined, () => ++ready === CLIENTS && (clearTimeout(timer), resolve()));
      }
    });

    // Publisher: numbered messages through B's HTTP API at a steady rate, until stopped.
    let published = 0;
    let publishing = true;
    const publisher = (async () => {
      const start = Date.now();
      while (publishing && Date.now() - start < DEADLINE_MS) {
        const due = start + (published * 1000) / RATE;
        if (due > Date.now()) await new Promise((r) => setTimeout(r, due - Date.now()));
        const res = await fetch(`${b.httpUrl}/api/publish`, {
          method: 'POST',
          headers: { authorization: `Bearer ${KEY}`, 'content-type': 'application/json' },
          body: JSON.stringify({ topic: TOPIC, data: published + 1 }),
        });
        if (res.ok) published++;
      }
    })();

    const received = () => clients.reduce((n, c) => n + c.seen.length, 0);
    const target = CLIENTS * Math.ceil(RATE); // about a second of traffic before the kill
    for (const start = Date.now(); received() < target && Date.now() - start < 30_000; ) await new Promise((r) => setTimeout(r, 20));

    let resumed = 0;
    const killAt = Date.now();
    const allResumed = new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`only ${resumed}/${CLIENTS} clients resumed`)), DEADLINE_MS);
      for (const c of clients) {
        c.ws.once('close', () => {
          c.killedAt = Date.now();
          open(c, b.url, { seq: c.last, epoch: c.epoch }, () => {
            c.resumedAt = Date.now();
            if (++resumed === CLIENTS) clearTimeout(timer), resolve();
          });
        });
      }
    });
    await a.kill();
    await allResumed;
    const resumeAllMs = Math.max(...clients.map((c) => c.resumedAt)) - killAt;

    // Let the publisher run on a little after the resume, then drain.
    for (const start = Date.now(); Date.now() - start < 1000; ) await new Promise((r) => setTimeout(r, 50));
    publishing = false;
    await publisher;
    for (const start = Date.now(); clients.some((c) => c.seen.length < published) && Date.now() - start < 30_000; ) {
      await new Promise((r) => setTimeout(r, 50));
    }

    const perClient = clients.map((c) => c.resumedAt - c.killedAt).sort((x, y) => x - y);
    const exact = clients.filter((c) => c.seen.length === published && c.seen.every((v, i) => v === i + 1)).length;
    const result = {
      clients: CLIENTS,
      publishRatePerSec: RATE,
      mode: RESTORE ? 'hello.restore' : 'hello, then sub with since',
      published,
      resumeAllMs,
      perClientResumeMs: { p50: percentile(perClient, 50), p99: percentile(perClient, 99), max: perClient[perClient.length - 1] },
      perClientWelcomeMs: (() => {
        const w = clients.map((c) => c.helloAt - c.killedAt).sort((x, y) => x - y);
        return { p50: percentile(w, 50), p99: percentile(w, 99) };
      })(),
      sessionsResumed: clients.filter((c) => c.sessionResumed).length,
      recovered: clients.filter((c) => c.recovered === true).length,
      exactSequence: exact,
      duplicatesDropped: clients.reduce((n, c) => n + c.dups, 0),
      gapsSeen: clients.reduce((n, c) => n + c.gaps, 0),
    };
    console.log(JSON.stringify(result, null, 2));
    if (OUT) writeFileSync(OUT, JSON.stringify(result, null, 2));
    if (exact !== CLIENTS || result.recovered !== CLIENTS) process.exitCode = 1;
  } finally {
    for (const c of clients) c.ws?.terminate();
    await Promise.allSettled([a.stop(), b.stop()]);
    await nats.cleanup();
  }
}

await main();
