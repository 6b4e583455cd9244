/**
 * The peer targets' client side (Socket.IO, nats-server WebSocket): how each counts deliveries,
 * unit by unit and against the real servers; and the summary outputs (markdown, SVG).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { StepResult } from '../../loadtest/bench/generator.ts';
import { compare, formatComparison, type TargetRun } from '../../loadtest/bench/report.ts';
import { formatMarkdown, renderSvg, summarize } from '../../loadtest/bench/summary.ts';
import { natsWsTarget } from '../../loadtest/bench/targets/nats-ws.ts';
import { REPO_ROOT, nodeTs } from '../../loadtest/bench/targets/paths.ts';
import { FRAME_BYTES, socketioClient, socketioData, socketioSentAt } from '../../loadtest/bench/targets/socketio.ts';
import type { StartedTarget } from '../../loadtest/bench/targets/types.ts';
import { NatsStream } from '../../loadtest/lib/nats-stream.ts';
import { freePort, sleep, startServer, waitUntil, type ServerChild } from '../../loadtest/lib/proc.ts';
import { connectRawWs, type RawWs } from '../../loadtest/lib/raw-ws.ts';
import { FrameParser, OP_BINARY, OP_TEXT } from '../../loadtest/lib/ws-frames.ts';

/** An unmasked server frame. */
function frame(opcode: number, payload: Buffer): Buffer {
  const len = payload.length;
  const head = len < 126 ? Buffer.from([0x80 | opcode, len]) : Buffer.from([0x80 | opcode, 126, len >> 8, len & 0xff]);
  return Buffer.concat([head, payload]);
}

function feed(p: FrameParser, bytes: Buffer, step: number): void {
  for (let i = 0; i < bytes.length; i += step) p.push(bytes, i, Math.min(bytes.length, i + step));
}

describe('FrameParser onShortMessage', () => {
  it('hands messages below minCountBytes to the hook in count-only mode, uncounted', () => {
    const short: string[] = [];
    const decoded: string[] = [];
    const p = new FrameParser(
      { onShortMessage: (b) => short.push(b.toString()), onMessage: (b) => decoded.push(b.toString()) },
      { decode: false, minCountBytes: 64 },
    );
    const big = Buffer.from(socketioData(1234.5, 1));
    const bytes = Buffer.concat([
      frame(OP_TEXT, Buffer.from('2')),
      frame(OP_TEXT, big),
      frame(OP_TEXT, Buffer.from('2')),
      frame(OP_TEXT, big),
      frame(OP_BINARY, Buffer.alloc(0)),
    ]);
    for (const step of [1, 3, bytes.length]) {
      short.length = 0;
      p.count = 0;
      feed(p, bytes, step);
      expect(short).toEqual(['2', '2', '']);
      expect(p.count).toBe(2);
      expect(decoded).toEqual([]);
    }
  });
});

describe('NatsStream', () => {
  const payload = (i: number) => Buffer.from(`payload-${i}-`.padEnd(40, 'x'));
  const msg = (i: number) => Buffer.concat([Buffer.from(`MSG bench.fanout 1 ${payload(i).length}\r\n`), payload(i), Buffer.from('\r\n')]);
  // The protocol as nats-server writes it: INFO, then MSGs with PINGs and other lines between them;
  // a payload containing CRLF and "MSG " must not confuse it (it is skipped by size).
  const tricky = Buffer.from('a\r\nMSG x 1 5\r\nb');
  const proto = Buffer.concat([
    Buffer.from('INFO {"server_id":"X","max_payload":1048576}\r\n'),
    ...Array.from({ length: 10 }, (_, i) => msg(i)),
    Buffer.from('PING\r\n'),
    Buffer.concat([Buffer.from(`MSG bench.fanout 1 _INBOX.reply ${tricky.length}\r\n`), tricky, Buffer.from('\r\n')]),
    Buffer.from("PONG\r\n-ERR 'Slow Consumer'\r\n"),
    Buffer.from('MSG bench.fanout 1 0\r\n\r\n'),
    ...Array.from({ length: 5 }, (_, i) => msg(10 + i)),
  ]);
  const messages = 17;

  /** Cuts the protocol bytes into frames of `per` bytes (nats-server's frames need not align with messages). */
  function framed(per: number): Buffer {
    const frames: Buffer[] = [];
    for (let i = 0; i < proto.length; i += per) frames.push(frame(OP_BINARY, proto.subarray(i, i + per)));
    return Buffer.concat(frames);
  }

  function run(decode: boolean, per: number, step: number, sampleEvery = 1) {
    const emitted: { p: string; binary: boolean }[] = [];
    const sent: string[] = [];
    const parser = new FrameParser({}, { decode, minCountBytes: 16 });
    parser.sampleEvery = sampleEvery;
    parser.stream = new NatsStream({
      parser,
      emit: (p, binary) => emitted.push({ p: p.toString(), binary }),
      send: (d) => sent.push(Buffer.from(d).toString()),
    });
    feed(parser, framed(per), step);
    return { parser, emitted, sent };
  }

  for (const [per, step] of [
    [proto.length, proto.length],
    [7, 1],
    [33, 5],
    [100, 64],
    [1000, 3],
  ] as const) {
    it(`counts every MSG, several per frame or split over frames (frames of ${per} bytes, read ${step} at a time)`, () => {
      const c = run(false, per, step);
      expect(c.parser.count).toBe(messages);
      expect(c.parser.bytes).toBe(
        proto.length - 'INFO {"server_id":"X","max_payload":1048576}\r\n'.length - 'PING\r\n'.length - "PONG\r\n-ERR 'Slow Consumer'\r\n".length,
      );
      expect(c.sent).toEqual(['PONG\r\n']); // PING answered on a count-only socket
      expect(c.emitted.filter((e) => e.binary)).toEqual([]); // count-only decodes no payload
      expect(c.emitted.map((e) => e.p)).toEqual(['INFO {"server_id":"X","max_payload":1048576}', 'PONG', "-ERR 'Slow Consumer'"]);

      const d = run(true, per, step);
      expect(d.parser.count).toBe(messages);
      const payloads = d.emitted.filter((e) => e.binary).map((e) => e.p);
      expect(payloads).toEqual([
        ...Array.from({ length: 10 }, (_, i) => payload(i).toString()),
        tricky.toString(),
        '',
        ...Array.from({ length: 5 }, (_, i) => payload(10 + i).toString()),
      ]);

      const s = run(true, per, step, 4);
      expect(s.parser.count).toBe(messages);
      expect(s.emitted.filter((e) => e.binary).map((e) => e.p)).toEqual([payload(3), payload(7), '', payload(13)].map(String));
    });
  }

  it('rejects a malformed MSG line', () => {
    const parser = new FrameParser({}, { decode: false });
    parser.stream = new NatsStream({ parser, emit: () => {}, send: () => {} });
    expect(() => parser.push(frame(OP_BINARY, Buffer.from('MSG a 1 x\r\n')))).toThrow(/bad MSG/);
  });
});

describe('Socket.IO payload', () => {
  it('delivers exactly FRAME_BYTES per event and carries the send time', () => {
    const c = socketioClient('bench.fanout');
    const t = performance.timeOrigin + performance.now();
    for (const seq of [0, 1, 123_456_789, 2 ** 32 - 1]) {
      const pub = JSON.parse(Buffer.from(c.encodePublish(t, seq)).toString().slice(2)) as [string, string, string];
      expect(pub.slice(0, 2)).toEqual(['pub', 'bench.fanout']);
      // What the server broadcasts for it: 42["m",<data>].
      const delivered = Buffer.from(`42${JSON.stringify(['m', pub[2]])}`);
      expect(delivered.length).toBe(FRAME_BYTES);
      expect(socketioSentAt(delivered)).toBeCloseTo(t, 2);
    }
    expect(socketioSentAt(Buffer.from('42["subscribed","bench.fanout"]'))).toBeUndefined();
  });
});

/** Waits until every socket counted `n`, or 10 s. */
async function allCounted(subs: RawWs[], n: number): Promise<void> {
  await waitUntil(() => subs.every((ws) => ws.parser.count >= n), 10_000, 20);
}

describe('Socket.IO server (socketio-server.ts), raw client', () => {
  let server: ServerChild;
  let port = 0;
  beforeAll(async () => {
    port = await freePort();
    // Ping every 200 ms, closed after 400 ms without a pong: count-only sockets must answer pings to stay.
    server = await startServer({
      ...nodeTs('loadtest/bench/socketio-server.ts'),
      cwd: REPO_ROOT,
      env: { PORT: String(port), HOST: '127.0.0.1', PING_INTERVAL_MS: '200', PING_TIMEOUT_MS: '400' },
      port,
    });
  });
  afterAll(() => server?.stop());

  it('answers pings on count-only sockets and counts one frame per delivered event', async () => {
    const c = socketioClient('bench.fanout');
    const open = () =>
      connectRawWs({
        host: '127.0.0.1',
        port,
        path: c.subscriberPath,
        decode: true,
        minCountBytes: c.minCountBytes,
        onShortMessage: c.onShortMessage!.bind(c),
      });
    const subs: RawWs[] = [];
    for (let i = 0; i < 5; i++) {
      const ws = await open();
      await c.subscribe(ws);
      ws.parser.decode = false;
      ws.parser.count = 0;
      ws.parser.bytes = 0;
      subs.push(ws);
    }
    const pub = await open();
    await c.preparePublisher(pub);
    await sleep(1200); // several ping intervals
    const n = 300;
    for (let i = 0; i < n; i += 30) {
      pub.sendMany(
        Array.from({ length: 30 }, (_, j) => c.encodePublish(performance.timeOrigin + performance.now(), i + j)),
        false,
      );
      await sleep(5);
    }
    await allCounted(subs, n);
    await sleep(300);
    for (const ws of subs) {
      expect(ws.closed).toBe(false);
      expect(ws.parser.count).toBe(n);
      expect(ws.parser.bytes).toBe(n * FRAME_BYTES);
    }
    for (const ws of [...subs, pub]) ws.destroy();
  }, 20_000);
});

describe('nats-server WebSocket target (nats-ws)', () => {
  let target: StartedTarget;
  let port = 0;
  beforeAll(async () => {
    port = await freePort();
    target = await natsWsTarget.start(port);
  });
  afterAll(() => target?.stop());

  it('counts every MSG on count-only sockets although nats-server puts several into one frame', async () => {
    const c = natsWsTarget.client('bench.fanout');
    const open = () => connectRawWs({ host: '127.0.0.1', port, path: c.subscriberPath, decode: true, minCountBytes: c.minCountBytes, stream: c.stream! });
    const subs: RawWs[] = [];
    for (let i = 0; i < 5; i++) {
      const ws = await open();
      await c.subscribe(ws);
      ws.parser.decode = false;
      subs.push(ws);
    }
    // One more subscriber counting frames, not MSGs: shows the coalescing the stream parser handles.
    const framesWs = await open();
    await c.subscribe(framesWs);
    framesWs.parser.stream = null;
    framesWs.parser.decode = false;
    framesWs.parser.minCountBytes = 1;
    framesWs.parser.count = 0;

    const pub = await open();
    await c.preparePublisher(pub);
    const n = 2000;
    for (let i = 0; i < n; i += 100) {
      pub.sendMany(
        Array.from({ length: 100 }, (_, j) => c.encodePublish(performance.timeOrigin + performance.now(), i + j)),
        true,
      );
      await sleep(2);
    }
    await allCounted(subs, n);
    await sleep(200);
    for (const ws of subs) {
      expect(ws.closed).toBe(false);
      expect(ws.parser.count).toBe(n);
      expect(ws.parser.bytes).toBe(n * 126); // "MSG bench.fanout 1 100\r\n" + 100 + "\r\n"
    }
    expect(framesWs.parser.count).toBeGreaterThan(0);
    expect(framesWs.parser.count).toBeLessThan(n);
    for (const ws of [...subs, framesWs, pub]) ws.destroy();
  }, 20_000);
});

describe('summary: markdown table, SVG chart, paired peaks', () => {
  const step = (target: number, delivered: number, p99: number, sustained: boolean, ns: number): StepResult => ({
    targetDeliveriesPerSec: target,
    subscribers: 1000,
    publishRate: target / 1000,
    published: 1,
    offeredDeliveriesPerSec: target,
    deliveredPerSec: delivered,
    expected: 1,
    received: 1,
    lost: 0,
    lossPct: 0,
    drainMs: 0,
    latencyMs: { p50: p99 / 4, p99, max: p99, samples: 100 },
    serverCpuPct: 90,
    helperCpuPct: 0,
    serverNsPerDelivery: ns,
    serverRssMB: 50,
    generatorCpuPct: 60,
    otherCpuPct: 1,
    disturbed: false,
    attempts: 1,
    closedDuringStep: 0,
    foreign: 0,
    publisherStalls: 0,
    publisherNotices: 0,
    sustained,
  });
  const run = (target: string, steps: StepResult[]): TargetRun => ({
    target,
    description: target,
    subscribers: 1000,
    connectSeconds: 1,
    serverKBPerConnection: 1,
    messageBytes: 100,
    steps,
  });
  const runs = [
    run('bare', [step(5e5, 5e5, 2, true, 400), step(1e6, 1e6, 4, true, 350), step(2e6, 1.6e6, 300, false, 300)]),
    run('socketio', [step(5e5, 5e5, 30, true, 2000), step(1e6, 6e5, 2000, false, 1800)]),
    run('nats-ws', [step(5e5, 5e5, 3, true, 500), step(1e6, 1e6, 5, true, 450)]),
  ];

  it('takes the figures at the highest step every target sustained and states it', () => {
    const [s] = summarize(runs, { socketio: 'bare', 'nats-ws': 'bare' });
    expect(s!.referenceStep).toBe(5e5);
    expect(s!.referenceKind).toBe('common');
    const md = formatMarkdown([s!]);
    expect(md).toContain('Reference step: **0.5M deliveries/s**');
    expect(md).toMatch(/\| bare \| 1\.60M \(2M\) \| 1\.00M \| 400 ns \| 0\.50 \/ 2\.00 ms \| 60% \/ 60% \| yes \| baseline \|/);
    expect(md).toMatch(/\| socketio \| 0\.60M \(1M\) \| 0\.50M \| 2000 ns \| 7\.50 \/ 30\.0 ms .*\| 0\.38x, 5\.00x \(vs bare\) \|/);
    expect(md).toMatch(/\| nats-ws \| >= 1\.00M \(1M\) \|/);
  });

  it('with rounds, judges the peak by the median of per-round ratios (each pair in one regime)', () => {
    // Round 1 fast for both, rounds 2 and 3 slow for both: per-step medians pair the gateway's
    // slow peak with bare's; the rounds say the gateway keeps up with bare in either regime.
    const r = (name: string, peak: number) => run(name, [step(1e6, 1e6, 4, true, 500), step(2e6, peak, 900, false, 300)]);
    const gw = [r('gateway', 2.1e6), r('gateway', 1.25e6), r('gateway', 1.2e6)];
    const bare = [r('bare', 2.0e6), r('bare', 1.3e6), r('bare', 1.25e6)];
    const c = compare(
      gw[1]!,
      bare[0]!,
      1.1,
      false,
      [0, 1, 2].map((i) => ({ run: gw[i]!, base: bare[i]! })),
    );
    expect(c.peak.ratio).toBeCloseTo(0.625, 3); // a slow round's peak against a fast one's
    expect(c.roundPeaks!.map((x) => Number(x.ratio.toFixed(3)))).toEqual([1.05, 0.962, 0.96]);
    expect(c.pairedPeakRatio).toBeCloseTo(0.962, 3);
    expect(c.verdict).toBe('pass');
    expect(formatComparison(c)).toContain('paired by round 0.96x (target >= 0.90x)');
    // A round whose peak had the generator busy is left out.
    const busy = r('bare', 2.4e6);
    busy.steps[1]!.generatorCpuPct = 80;
    const c2 = compare(
      gw[1]!,
      bare[0]!,
      1.1,
      false,
      [0, 1, 2].map((i) => ({ run: gw[i]!, base: i === 0 ? busy : bare[i]! })),
    );
    expect(c2.roundPeaks).toHaveLength(2);
    expect(c2.notes.join('\n')).toContain('1 round(s) left out');
  });

  it('draws one line per target on a log latency axis', () => {
    const svg = renderSvg(runs);
    expect(svg.startsWith('<svg')).toBe(true);
    expect(svg.trim().endsWith('</svg>')).toBe(true);
    expect(svg.match(/<polyline /g)).toHaveLength(3);
    expect(svg.match(/<circle /g)!.length).toBe(7 + 3); // points + legend markers
    expect(svg).toContain('fill="white"><title>socketio: offered 1.00M/s, delivered 0.60M/s, p99 2000 ms (not sustained)');
    for (const label of ['>1<', '>10<', '>100<', '>1000<']) expect(svg).toContain(label);
  });
});
