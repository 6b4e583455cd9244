/**
 * The native sink (loadtest/native/sink.c), built as the benchmark builds it: first against a
 * scripted WebSocket server that writes exactly the bytes each case needs (split into small
 * writes, so frames and headers straddle reads), then against the real bare server and gateway
 * through the generator, counting what was published, from source addresses other than 127.0.0.1.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import net from 'node:net';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { Fleet, runStep, sinkSource } from '../../loadtest/bench/generator.ts';
import { TARGETS, type StartedTarget } from '../../loadtest/bench/targets/index.ts';
import { freePort, waitUntil } from '../../loadtest/lib/proc.ts';
import { sinkBinary } from '../../loadtest/native/build.ts';
import { SinkProcess, type SinkCounters } from '../../loadtest/native/sink.ts';
import type { SinkSpec } from '../../loadtest/native/spec.ts';

let binary: string;
beforeAll(() => {
  binary = sinkBinary();
}, 60_000);

// ---- a scripted server ------------------------------------------------------------------------

const GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11';

/** An unmasked server frame; `fin = false` starts or continues a fragmented message. */
function frame(opcode: number, payload: Buffer | string, fin = true): Buffer {
  const p = typeof payload === 'string' ? Buffer.from(payload) : payload;
  const b0 = (fin ? 0x80 : 0) | opcode;
  let head: Buffer;
  if (p.length < 126) head = Buffer.from([b0, p.length]);
  else if (p.length < 65536) head = Buffer.from([b0, 126, p.length >> 8, p.length & 0xff]);
  else {
    head = Buffer.alloc(10);
    head[0] = b0;
    head[1] = 127;
    head.writeUInt32BE(p.length, 6);
  }
  return Buffer.concat([head, p]);
}

const closeFrame = (code: number) => frame(0x8, Buffer.from([code >> 8, code & 0xff]));

interface ClientFrame {
  opcode: number;
  payload: Buffer;
}

/** One server-side connection: what the client sent (frames checked to be masked), and a writer. */
class Peer {
  readonly frames: ClientFrame[] = [];
  unmasked = 0;
  private pending = Buffer.alloc(0);
  private waiters: (() => void)[] = [];

  constructor(
    readonly socket: net.Socket,
    readonly protocol: string | undefined,
  ) {}

  /** Writes `bytes` in pieces of `chunk` bytes (separate writes, no Nagle: headers and payloads straddle reads). */
  async write(bytes: Buffer, chunk = 7): Promise<void> {
    for (let i = 0; i < bytes.length; i += chunk) {
      const ok = this.socket.write(bytes.subarray(i, i + chunk));
      if (!ok) await new Promise((r) => this.socket.once('drain', r));
    }
  }

  /** The next client frame with this opcode (waits at most 5 s). */
  async next(opcode: number): Promise<ClientFrame> {
    const deadline = Date.now() + 5000;
    for (;;) {
      const i = this.frames.findIndex((f) => f.opcode === opcode);
      if (i >= 0) return this.frames.splice(i, 1)[0]!;
      if (Date.now() > deadline) throw new Error(`no client frame with opcode ${opcode}`);
      await new Promise<void>((r) => {
        this.waiters.push(r);
        setTimeout(r, 100);
      });
    }
  }

  push(data: Buffer): void {
    this.pending = Buffer.concat([this.pending, data]);
    for (;;) {
      const b = this.pending;
      if (b.length < 2) return;
      let len = b[1]! & 0x7f;
      let off = 2;
      if (len === 126) {
        if (b.length < 4) return;
        len = b.readUInt16BE(2);
        off = 4;
      }
      const masked = (b[1]! & 0x80) !== 0;
      if (!masked) this.unmasked++;
      const keyOff = off;
      if (masked) off += 4;
      if (b.length < off + len) return;
      const payload = Buffer.from(b.subarray(off, off + len));
      if (masked) for (let k = 0; k < len; k++) payload[k]! ^= b[keyOff + (k & 3)]!;
      this.frames.push({ opcode: b[0]! & 0x0f, payload });
      this.pending = b.subarray(off + len);
      for (const w of this.waiters.splice(0)) w();
    }
  }
}

interface Scripted {
  port: number;
  peers: Peer[];
  /** What the scripts threw (checked by afterEach). */
  errors: unknown[];
  close(): void;
}

/** A WebSocket server on a free port that hands each upgraded connection to `script`. */
async function scriptedServer(script: (peer: Peer) => void | Promise<void>, protocol?: string): Promise<Scripted> {
  const peers: Peer[] = [];
  const errors: unknown[] = [];
  const server = net.createServer((socket) => {
    socket.setNoDelay(true);
    let head = Buffer.alloc(0);
    let peer: Peer | null = null;
    socket.on('error', () => {});
    socket.on('data', (d) => {
      if (peer) return peer.push(d);
      head = Buffer.concat([head, d]);
      const end = head.indexOf('\r\n\r\n');
      if (end < 0) return;
      const text = head.subarray(0, end).toString('latin1');
      const key = /sec-websocket-key: *(\S+)/i.exec(text)?.[1] ?? '';
      const offered = /sec-websocket-protocol: *(\S+)/i.exec(text)?.[1];
      const accept = createHash('sha1')
        .update(key + GUID)
        .digest('base64');
      socket.write(
        `HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${accept}\r\n` +
          (protocol ? `Sec-WebSocket-Protocol: ${offered === protocol ? protocol : 'none'}\r\n` : '') +
          '\r\n',
      );
      peer = new Peer(socket, offered);
      peers.push(peer);
      const rest = head.subarray(end + 4);
      if (rest.length) peer.push(rest);
      Promise.resolve()
        .then(() => script(peer!))
        .catch((e) => errors.push(e));
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    port: (server.address() as net.AddressInfo).port,
    peers,
    errors,
    close() {
      for (const p of peers) p.socket.destroy();
      server.close();
    },
  };
}

const sinks: SinkProcess[] = [];
const servers: Scripted[] = [];
afterEach(() => {
  for (const s of sinks.splice(0)) s.kill();
  const errors = servers.flatMap((s) => s.errors);
  for (const s of servers.splice(0)) s.close();
  expect(errors).toEqual([]);
});

async function startSink(
  port: number,
  spec: SinkSpec,
  extra: { minCountBytes: number; protocol?: string; source?: string; perSource?: number },
): Promise<SinkProcess> {
  const sink = await SinkProcess.start({ binary, host: '127.0.0.1', port, path: '/ws', spec, source: extra.source ?? '127.0.9.1', ...extra });
  sinks.push(sink);
  return sink;
}

async function until(sink: SinkProcess, cond: (r: SinkCounters) => boolean): Promise<SinkCounters> {
  const ok = await waitUntil(() => cond(sink.read()), 10_000, 5);
  const r = sink.read();
  if (!ok) throw new Error(`sink counters never matched: ${JSON.stringify(r)} ${sink.exit ?? ''}`);
  return r;
}

describe('native sink against a scripted server', () => {
  it('does the upgrade and handshake steps, counts messages at or above min-count across any split, answers pings, masks what it sends', async () => {
    const big = Buffer.alloc(70_000, 7);
    const srv = await scriptedServer(async (peer) => {
      const hi = await peer.next(0x2);
      expect(hi.payload.toString()).toBe('hello');
      await peer.write(Buffer.concat([frame(0x1, 'noise'), frame(0x1, 'ready!')]), 1);
      await peer.write(
        Buffer.concat([
          frame(0x2, Buffer.alloc(100, 1)), // counted
          frame(0x1, 'x'.repeat(9)), // below min-count (10)
          frame(0x1, 'abcdef', false), // a fragmented message of 12 bytes, counted once ...
          frame(0x9, 'are you there'), // ... with a ping between its fragments
          frame(0x0, 'ghijkl'),
          frame(0x2, Buffer.alloc(300, 2)), // 16-bit length
          frame(0x2, big), // 64-bit length
          frame(0x2, Buffer.alloc(0)), // empty: not counted
        ]),
      );
    }, 'test.v1');
    servers.push(srv);
    const spec: SinkSpec = { steps: [{ send: Buffer.from('hello'), expect: { bytes: 'ready', at: 'start' } }] };
    // Three sockets, two per source address: 127.0.9.1 twice, 127.0.9.2 once.
    const sink = await startSink(srv.port, spec, { minCountBytes: 10, protocol: 'test.v1', perSource: 2 });
    sink.open(3);
    const r = await until(sink, (x) => x.counted === 3 * 4 && x.pings === 3);
    expect(r).toMatchObject({ requested: 3, upgraded: 3, handshaken: 3, failed: 0, open: 3, closed: 0, bytes: 3 * (100 + 12 + 300 + big.length) });
    for (const peer of srv.peers) {
      expect(peer.protocol).toBe('test.v1');
      expect((await peer.next(0xa)).payload.toString()).toBe('are you there');
      expect(peer.unmasked).toBe(0);
    }
    const sources = srv.peers.map((p) => p.socket.remoteAddress).sort();
    expect(sources).toEqual(['127.0.9.1', '127.0.9.1', '127.0.9.2']);
  });

  it('answers the ping rule on count-only sockets, and counts close codes (1006 without a close frame)', async () => {
    let n = 0;
    const srv = await scriptedServer(async (peer) => {
      const i = n++;
      await peer.write(frame(0x1, 'welcome'));
      await peer.write(frame(0x1, '2')); // a protocol ping, after the handshake
      const pong = await peer.next(0x1);
      expect(pong.payload.toString()).toBe('3');
      if (i % 2 === 0) await peer.write(closeFrame(4001));
      else peer.socket.destroy();
    });
    servers.push(srv);
    const sink = await startSink(srv.port, { steps: [{ expect: { bytes: 'welcome', at: 'start' } }], ping: { match: '2', reply: '3' } }, { minCountBytes: 64 });
    sink.open(4);
    await until(sink, (x) => x.pings === 4);
    // The sink echoes the close; the server then ends the connection.
    await waitUntil(() => srv.peers.filter((p) => p.frames.some((f) => f.opcode === 0x8)).length === 2, 5000);
    for (const p of srv.peers) p.socket.end();
    const r = await until(sink, (x) => x.closed === 4);
    expect(r).toMatchObject({ handshaken: 4, open: 0, counted: 0, failed: 0, closeCodes: { 4001: 2, 1006: 2 } });
  });

  it('fails a socket whose handshake reply matches the fail rule, and says why', async () => {
    const srv = await scriptedServer(async (peer) => {
      await peer.next(0x1);
      await peer.write(frame(0x1, 'error: not allowed'));
    });
    servers.push(srv);
    const spec: SinkSpec = { steps: [{ send: 'sub', expect: { bytes: 'ok', at: 'anywhere' } }], fail: { bytes: 'error', at: 'start' } };
    const sink = await startSink(srv.port, spec, { minCountBytes: 1 });
    sink.open(2);
    const r = await until(sink, (x) => x.failed === 2);
    expect(r.handshaken).toBe(0);
    expect(r.lastError).toContain('error: not allowed');
  });

  it('counts NATS MSG lines of a byte stream cut anywhere into frames, and answers PING', async () => {
    const msg = (i: number) => {
      const payload = Buffer.from(`payload-${i}-`.padEnd(40, 'x'));
      return Buffer.concat([Buffer.from(`MSG bench.fanout 1 ${payload.length}\r\n`), payload, Buffer.from('\r\n')]);
    };
    // A payload holding CRLF and "MSG " is skipped by its size, not parsed.
    const tricky = Buffer.from('a\r\nMSG x 1 5\r\nb');
    const proto = Buffer.concat([
      ...Array.from({ length: 10 }, (_, i) => msg(i)),
      Buffer.from('PING\r\n'),
      Buffer.from(`MSG bench.fanout 1 _INBOX.reply ${tricky.length}\r\n`),
      tricky,
      Buffer.from('\r\n+OK\r\nMSG bench.fanout 1 0\r\n\r\n'),
      ...Array.from({ length: 5 }, (_, i) => msg(10 + i)),
    ]);
    const srv = await scriptedServer(async (peer) => {
      const sub = await peer.next(0x2);
      expect(sub.payload.toString()).toBe('SUB bench.fanout 1\r\nPING\r\n');
      await peer.write(frame(0x2, `INFO {"server_id":"X","pad":"${'y'.repeat(900)}"}\r\nPO`));
      await peer.write(frame(0x2, 'NG\r\n'));
      const frames: Buffer[] = [];
      for (let i = 0; i < proto.length; i += 11) frames.push(frame(0x2, proto.subarray(i, i + 11)));
      await peer.write(Buffer.concat(frames), 5);
    });
    servers.push(srv);
    const spec: SinkSpec = {
      steps: [{ send: Buffer.from('SUB bench.fanout 1\r\nPING\r\n'), expect: { bytes: 'PONG', at: 'start' } }],
      fail: { bytes: '-ERR', at: 'start' },
      ping: { match: 'PING', reply: Buffer.from('PONG\r\n') },
      stream: 'nats',
    };
    const sink = await startSink(srv.port, spec, { minCountBytes: 16 });
    sink.open(2);
    const r = await until(sink, (x) => x.counted === 2 * 17 && x.pings === 2);
    expect(r).toMatchObject({ handshaken: 2, failed: 0 });
    for (const peer of srv.peers) expect((await peer.next(0x2)).payload.toString()).toBe('PONG\r\n');
  });
});

// ---- the real servers ------------------------------------------------------------------------

/** Established connections to `port` from each local address other than 127.0.0.1, from /proc/net/tcp. */
function sourcesTo(port: number): Map<string, number> {
  const bySource = new Map<string, number>();
  for (const line of readFileSync('/proc/net/tcp', 'latin1').split('\n').slice(1)) {
    const f = line.trim().split(/\s+/);
    if (f.length < 4 || f[3] !== '01') continue; // ESTABLISHED
    const [local, remote] = [f[1]!, f[2]!];
    if (Number.parseInt(remote.split(':')[1]!, 16) !== port) continue;
    const hex = local.split(':')[0]!;
    const ip = [3, 2, 1, 0].map((i) => Number.parseInt(hex.slice(2 * i, 2 * i + 2), 16)).join('.');
    bySource.set(ip, (bySource.get(ip) ?? 0) + 1);
  }
  return bySource;
}

describe.each(['bare', 'gateway'])('native generator against the %s server', (name) => {
  const SUBS = 300;
  let server: StartedTarget | null = null;
  let fleet: Fleet | null = null;
  afterAll(async () => {
    fleet?.close();
    await server?.stop();
  });

  it('holds the count-only sockets in two sinks (127.0.1.1, 127.0.2.1), the sampled ones in Node, and counts every delivery', async () => {
    const target = TARGETS[name]!;
    const port = await freePort();
    server = await target.start(port);
    fleet = await Fleet.open(target, 'bench.fanout', port, SUBS, 8, server.natsUrl, { generator: 'native', sinkBinary: binary, sinkProcs: 2 });
    expect(fleet.generator).toBe('native');
    expect(fleet.subs).toHaveLength(8);
    expect(fleet.openCount()).toBe(SUBS);

    const sources = sourcesTo(port);
    const fromSinks = fleet.sinks.map((s) => s.read().handshaken);
    expect(fromSinks.reduce((a, b) => a + b, 0)).toBe(SUBS - 8);
    expect(sources.get(sinkSource(0))).toBe(fromSinks[0]);
    expect(sources.get(sinkSource(1))).toBe(fromSinks[1]);
    // The publisher and the sampled sockets: this process, from 127.0.0.1.
    expect(sources.get('127.0.0.1')).toBe(8 + 1);

    const r = await runStep(fleet, 100_000, { seconds: 1, drainMs: 10_000, serverPid: server.pid });
    expect(r.published).toBeGreaterThan(0);
    expect(r.subscribers).toBe(SUBS);
    expect(r.received).toBe(r.expected);
    expect(r.lost).toBe(0);
    expect(r.closedDuringStep).toBe(0);
    // The sampled sockets decoded bench messages (for the gateway: compact msg frames), nothing foreign.
    expect(r.latencyMs.samples).toBeGreaterThan(0);
    expect(r.foreign).toBe(0);
    expect(r.generatorProcs).toBe(3);
    expect(r.generatorCpuPct).toBeGreaterThanOrEqual(r.generatorMaxProcCpuPct!);
    // About 100 bytes per delivered message (the handshake replies counted once per socket aside).
    const c = fleet.counted();
    expect(c.bytes / c.messages).toBeGreaterThan(95);
    expect(c.bytes / c.messages).toBeLessThan(110);
  }, 60_000);
});
