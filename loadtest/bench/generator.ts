/**
 * The load generator: N subscriber sockets and one publisher (one clock for the publisher and the
 * sockets that measure latency, so publish-to-receive latency needs no clock sync), and the
 * measurement of one load step. The count-only sockets live in native sink processes
 * (loadtest/native/, `generator: 'native'`) or in this process (`'node'`); the sampled sockets
 * and the publisher thread are always here.
 */
import { Worker } from 'node:worker_threads';
import { LatencyRecorder } from '../lib/latency.ts';
import { machineBusySeconds, machineIrqSeconds, procCpuSeconds, procRssBytes, waitUntil } from '../lib/proc.ts';
import { connectRawWs, type RawWs } from '../lib/raw-ws.ts';
import { SINK_MAX_SOCKETS, SinkProcess } from '../native/sink.ts';
import { nowMs, type PublisherReport } from './publisher.ts';
import type { PublisherCommand, PublisherWorkerData } from './publisher-worker.ts';
import type { BenchClient, Target } from './targets/index.ts';

const HOST = '127.0.0.1';
/** Sockets being opened at once (keeps the server's accept backlog and our timers sane). */
const CONNECT_CONCURRENCY = 200;
/** Opening the whole fleet gives up after this long. */
const CONNECT_DEADLINE_MS = 90_000;
/** How long the publisher thread may take to connect and handshake, and a run to report past its duration. */
const PUBLISHER_TIMEOUT_MS = 20_000;

/**
 * A worker entry that loads a TypeScript module: workers do not inherit tsx's loader, so a tiny
 * ES module (a data: URL, with absolute specifiers) loads it through tsx's API.
 */
function tsWorkerEntry(module: URL): URL {
  const api = import.meta.resolve('tsx/esm/api');
  const code = `import { tsImport } from ${JSON.stringify(api)};\nawait tsImport(${JSON.stringify(module.href)}, ${JSON.stringify(module.href)});`;
  return new URL(`data:text/javascript,${encodeURIComponent(code)}`);
}

/** The publisher, running in its own worker thread (see publisher.ts). */
export class PublisherThread {
  /** The state reported after the last run. */
  last: PublisherReport = { sent: 0, stalls: 0, notices: [], noticeCount: 0, closed: false, closeCode: 0, closeReason: '' };

  private constructor(private readonly worker: Worker) {}

  static start(target: string, topic: string, port: number, natsUrl?: string): Promise<PublisherThread> {
    const data: PublisherWorkerData = { target, topic, port, ...(natsUrl ? { natsUrl } : {}) };
    const worker = new Worker(tsWorkerEntry(new URL('./publisher-worker.ts', import.meta.url)), { workerData: data });
    const thread = new PublisherThread(worker);
    return thread.next('ready', PUBLISHER_TIMEOUT_MS).then(() => thread);
  }

  /** Publishes `rate` messages/s for `durationMs` (in the worker); resolves with how many were sent. */
  async run(rate: number, durationMs: number): Promise<number> {
    const reply = this.next('done', durationMs + PUBLISHER_TIMEOUT_MS);
    this.worker.postMessage({ type: 'run', rate, durationMs } satisfies PublisherCommand);
    this.last = ((await reply) as { report: PublisherReport }).report;
    return this.last.sent;
  }

  close(): void {
    this.worker.postMessage({ type: 'close' } satisfies PublisherCommand);
    // The worker ends by itself once its socket is gone; do not let it hold the process.
    setTimeout(() => void this.worker.terminate(), 2000).unref();
  }

  private next(type: string, timeoutMs: number): Promise<unknown> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => done(new Error(`publisher thread: no ${type} within ${timeoutMs} ms`)), timeoutMs);
      const onMessage = (m: { type: string; message?: string }) => {
        if (m.type === type) done(null, m);
        else if (m.type === 'error') done(new Error(`publisher thread: ${m.message}`));
      };
      const onError = (e: Error) => done(e);
      const done = (err: Error | null, m?: unknown) => {
        clearTimeout(timer);
        this.worker.off('message', onMessage);
        this.worker.off('error', onError);
        if (err) reject(err);
        else resolve(m);
      };
      this.worker.on('message', onMessage);
      this.worker.on('error', onError);
    });
  }
}

export type GeneratorKind = 'node' | 'native';

export interface FleetOptions {
  /** Where the count-only sockets live: native sink processes, or this process. */
  generator: GeneratorKind;
  /** The built sink (loadtest/native/build.ts), for `native`. */
  sinkBinary?: string;
  /** Sink processes (default: as few as hold the sockets, SINK_MAX_SOCKETS each). */
  sinkProcs?: number;
}

/** Where the sink processes' sockets come from: sink p binds to 127.0.(p+1).1 and up (never 127.0.0.1). */
export const sinkSource = (p: number): string => `127.0.${p + 1}.1`;

/** CPU seconds of each generator process: this one (main thread, publisher thread) first, then the sinks. */
export type GeneratorCpu = number[];

/** The subscribers and the publisher of one target run. */
export class Fleet {
  /** The subscriber sockets in this process: all of them (`node`), or only the sampled ones (`native`). */
  readonly subs: RawWs[] = [];
  /** The native sink processes holding the count-only sockets (`native`). */
  readonly sinks: SinkProcess[] = [];
  readonly latency = new LatencyRecorder();
  /** Counted-size messages on sampled sockets that were not bench messages (would inflate counts). */
  foreign = 0;
  /** The subscribers that decode messages for latency. */
  readonly sampled: RawWs[] = [];
  publisher: PublisherThread | null = null;
  private closed = false;

  private constructor(private readonly client: BenchClient) {}

  get generator(): GeneratorKind {
    return this.sinks.length > 0 ? 'native' : 'node';
  }

  /**
   * Opens `n` subscribers (the `samples` of them spread evenly over the connection order decode
   * messages for latency; the rest only count) and the publisher (on NATS at `natsUrl` when the
   * target's client publishes there).
   */
  static async open(target: Target, topic: string, port: number, n: number, samples: number, natsUrl: string | undefined, fo: FleetOptions): Promise<Fleet> {
    const fleet = new Fleet(target.client(topic));
    const k = Math.min(samples, n);
    const sampledIdx = Array.from({ length: k }, (_, j) => Math.floor(((j + 0.5) * n) / k));
    try {
      if (fo.generator === 'native') {
        if (!fleet.client.sink) throw new Error(`target ${target.name} has no native sink handshake (BenchClient.sink): use --generator node`);
        await fleet.openNative(port, n, sampledIdx, fo);
      } else await fleet.openNode(port, n, new Set(sampledIdx));
      fleet.publisher = await PublisherThread.start(target.name, topic, port, natsUrl);
    } catch (e) {
      fleet.close();
      throw e;
    }
    return fleet;
  }

  /** All sockets here, CONNECT_CONCURRENCY at a time. */
  private async openNode(port: number, n: number, sampledIdx: Set<number>): Promise<void> {
    let next = 0;
    const deadline = performance.now() + CONNECT_DEADLINE_MS;
    const worker = async () => {
      while (next < n && !this.closed) {
        if (performance.now() > deadline) throw new Error(`opened only ${next} of ${n} subscribers in ${CONNECT_DEADLINE_MS / 1000} s`);
        const i = next++;
        await this.openSubscriber(port, sampledIdx.has(i));
      }
    };
    await Promise.all(Array.from({ length: Math.min(CONNECT_CONCURRENCY, n) }, worker));
  }

  /**
   * Count-only sockets in the sinks, sampled ones here, in connection order: the sinks open the
   * sockets before each sampled one (spread evenly over the sinks), then the sampled one opens.
   */
  private async openNative(port: number, n: number, sampledIdx: number[], fo: FleetOptions): Promise<void> {
    const c = this.client;
    const countOnly = n - sampledIdx.length;
    const procs = fo.sinkProcs ?? Math.max(1, Math.ceil(countOnly / SINK_MAX_SOCKETS));
    if (countOnly / procs > SINK_MAX_SOCKETS)
      throw new Error(`${countOnly} count-only sockets need ${Math.ceil(countOnly / SINK_MAX_SOCKETS)} sink processes or more (--sink-procs)`);
    for (let p = 0; p < procs; p++) {
      this.sinks.push(
        await SinkProcess.start({
          binary: fo.sinkBinary!,
          host: HOST,
          port,
          path: c.subscriberPath,
          protocol: c.subprotocol,
          minCountBytes: c.minCountBytes,
          spec: c.sink!,
          source: sinkSource(p),
          concurrency: Math.max(1, Math.floor(CONNECT_CONCURRENCY / procs)),
        }),
      );
    }
    const asked = new Array<number>(procs).fill(0);
    let rr = 0;
    let from = 0;
    const deadline = performance.now() + CONNECT_DEADLINE_MS;
    for (const until of [...sampledIdx, n]) {
      const share = new Array<number>(procs).fill(0);
      for (let i = from; i < until; i++) share[rr++ % procs]!++;
      share.forEach((k, p) => {
        this.sinks[p]!.open(k);
        asked[p]! += k;
      });
      await this.sinksReady(asked, deadline);
      if (until < n) await this.openSubscriber(port, true);
      from = until + 1;
    }
  }

  /** Waits until every sink has handshaken what it was asked for; throws with the reason if a socket failed. */
  private async sinksReady(asked: number[], deadline: number): Promise<void> {
    let problem = '';
    await waitUntil(
      () => {
        let done = true;
        this.sinks.forEach((sink, p) => {
          const r = sink.read();
          if (r.failed > 0) problem ||= `${r.failed} native sink sockets failed, e.g. ${r.lastError}`;
          else if (sink.exit) problem ||= `native sink ${sink.exit}`;
          if (r.handshaken < asked[p]!) done = false;
        });
        return done || problem !== '';
      },
      Math.max(0, deadline - performance.now()),
      10,
    );
    if (problem) throw new Error(problem);
    const opened = this.sinks.reduce((a, s) => a + s.read().handshaken, 0);
    const want = asked.reduce((a, b) => a + b, 0);
    if (opened < want) throw new Error(`the native sinks opened only ${opened} of ${want} subscribers in ${CONNECT_DEADLINE_MS / 1000} s`);
  }

  private async openSubscriber(port: number, sampled: boolean): Promise<void> {
    const c = this.client;
    const ws = await connectRawWs({
      host: HOST,
      port,
      path: c.subscriberPath,
      protocol: c.subprotocol,
      decode: true,
      minCountBytes: c.minCountBytes,
      ...(c.onShortMessage ? { onShortMessage: c.onShortMessage.bind(c) } : {}),
      ...(c.stream ? { stream: c.stream } : {}),
    });
    this.subs.push(ws);
    if (this.closed) return ws.destroy(); // another subscriber failed meanwhile
    await c.subscribe(ws);
    if (!sampled) {
      ws.parser.decode = false;
      return;
    }
    this.sampled.push(ws);
    ws.onMessage = (payload) => {
      const sentAt = c.sentAt(payload);
      if (sentAt !== undefined) this.latency.record(nowMs() - sentAt);
      else if (payload.length >= c.minCountBytes) this.foreign++;
    };
  }

  /** Deliveries counted so far, every socket (a synchronous read of the sinks' counters). */
  received(): number {
    let total = 0;
    for (let i = 0; i < this.subs.length; i++) total += this.subs[i]!.parser.count;
    for (const sink of this.sinks) total += sink.read().counted;
    return total;
  }

  /** Subscribers still open. */
  openCount(): number {
    let open = 0;
    for (const ws of this.subs) if (!ws.closed) open++;
    for (const sink of this.sinks) open += sink.read().open;
    return open;
  }

  /** Counted messages and their payload bytes, every socket. */
  counted(): { messages: number; bytes: number } {
    let messages = 0;
    let bytes = 0;
    for (const ws of this.subs) {
      messages += ws.parser.count;
      bytes += ws.parser.bytes;
    }
    for (const sink of this.sinks) {
      const r = sink.read();
      messages += r.counted;
      bytes += r.bytes;
    }
    return { messages, bytes };
  }

  /** Close codes of the subscribers the server closed, with how many (1006: no close frame). */
  closeCodes(): Record<number, number> {
    const codes: Record<number, number> = {};
    for (const ws of this.subs) if (ws.closed) codes[ws.closeCode || 1006] = (codes[ws.closeCode || 1006] ?? 0) + 1;
    for (const sink of this.sinks) for (const [code, k] of Object.entries(sink.read().closeCodes)) codes[Number(code)] = (codes[Number(code)] ?? 0) + k;
    return codes;
  }

  /** CPU seconds so far of each generator process: this one (all its threads) first, then each sink. */
  cpu(): GeneratorCpu {
    const own = process.cpuUsage();
    return [(own.user + own.system) / 1e6, ...this.sinks.map((s) => s.cpuSeconds())];
  }

  close(): void {
    this.closed = true;
    for (const ws of this.subs) ws?.destroy();
    for (const sink of this.sinks) sink.kill();
    this.publisher?.close();
  }
}

export interface StepResult {
  /** The step: deliveries/s asked for; the publish rate is this divided by the subscribers. */
  targetDeliveriesPerSec: number;
  subscribers: number;
  publishRate: number;
  published: number;
  /** Deliveries/s actually offered: messages published per second times subscribers. */
  offeredDeliveriesPerSec: number;
  /** Deliveries counted at subscribers per second, over the last two thirds of the publish window. */
  deliveredPerSec: number;
  /** published x subscribers. */
  expected: number;
  /** Deliveries counted by the end of the drain wait (window + drain). */
  received: number;
  lost: number;
  lossPct: number;
  /** How long after publishing stopped the last expected delivery came (or the wait gave up). */
  drainMs: number;
  latencyMs: { p50: number; p99: number; max: number; samples: number };
  /**
   * Server-side CPU over window + drain, in % of one core, and per delivery: the server process
   * plus its helpers (nats-server for the NATS targets), whose part is `helperCpuPct`.
   */
  serverCpuPct: number;
  /** The helper processes' part of serverCpuPct (nats-server); 0 for targets without helpers. */
  helperCpuPct: number;
  serverNsPerDelivery: number;
  serverRssMB: number;
  /**
   * The generator's CPU over window + drain, in % of one core: every generator process (this one
   * with its publisher thread, and the native sinks), summed.
   */
  generatorCpuPct: number;
  /** The busiest generator process's part of it (a process that nears 100% is saturated itself). */
  generatorMaxProcCpuPct?: number;
  /** Generator processes (1 with `--generator node`, 1 + sinks with `native`). */
  generatorProcs?: number;
  /** Each generator process's CPU, % of one core: this one (main thread, sampled sockets, publisher thread) first, then each sink. */
  generatorProcCpuPct?: number[];
  /** Cores the generator was given (1 with --pin); the busy rule scales with it (report.ts generatorBusy). */
  generatorCores?: number;
  /**
   * CPU used by everything else on the machine meanwhile (other processes, steal), in % of one
   * core, interrupt time not included. On a 2-core machine a busy neighbour takes CPU from the
   * server or the generator.
   */
  otherCpuPct: number;
  /**
   * The machine's interrupt and softirq time over the same window, % of one core: mostly the
   * benchmark's own loopback traffic, which the kernel charges to no process when it runs it
   * outside the sender's time slice. Left out of `otherCpuPct` (it is not a neighbour's load).
   */
  irqCpuPct?: number;
  /** Other load stayed above DISTURBED_PCT even after a retry: treat this step's figures with care. */
  disturbed: boolean;
  /** Runs of this step made (repeats and re-measures); the others' delivered rates, with --repeat. */
  attempts: number;
  deliveredPerSecRuns?: number[];
  closedDuringStep: number;
  foreign: number;
  publisherStalls: number;
  publisherNotices: number;
  sustained: boolean;
}

export interface StepOptions {
  seconds: number;
  drainMs: number;
  serverPid: number;
  /** Processes whose CPU counts as server-side too (nats-server). */
  helperPids?: readonly number[];
  /** Cores the generator was given (1 with --pin). */
  generatorCores?: number;
}

/** Latency samples decoded per second, all sampled sockets together (bounds the generator's decoding work). */
const LATENCY_SAMPLES_PER_SEC = 20_000;

/** Other load (in % of one core) above which a step counts as disturbed by neighbours. */
export const DISTURBED_PCT = 25;

/** Runs one load step and measures it. */
export async function runStep(fleet: Fleet, targetDeliveriesPerSec: number, o: StepOptions): Promise<StepResult> {
  const subscribers = fleet.openCount();
  const publishRate = targetDeliveriesPerSec / Math.max(1, subscribers);
  fleet.latency.reset();
  // Decoding costs the generator CPU (msgpack for the gateway): keep it to about
  // LATENCY_SAMPLES_PER_SEC in all, the same for every target, by decoding every n-th message.
  const every = Math.max(1, Math.ceil((publishRate * fleet.sampled.length) / LATENCY_SAMPLES_PER_SEC));
  for (const ws of fleet.sampled) ws.parser.sampleEvery = every;
  const foreign0 = fleet.foreign;
  const publisher = fleet.publisher!;
  const stalls0 = publisher.last.stalls;
  const notices0 = publisher.last.noticeCount;

  const c0 = fleet.received();
  const helpers = o.helperPids ?? [];
  const helperCpu = () => helpers.reduce((a, pid) => a + procCpuSeconds(pid), 0);
  const srv0 = procCpuSeconds(o.serverPid);
  const hlp0 = helperCpu();
  const gen0 = fleet.cpu();
  const machine0 = machineBusySeconds();
  const irq0 = machineIrqSeconds();
  const t0 = performance.now();

  // The delivery rate is taken over the last two thirds of the window: by then deliveries run at
  // steady state (at 10,000 subscribers the first ones lag the publish by ~100 ms), and what is in
  // flight at its start and at its end cancels out.
  let cMid = c0;
  let tMid = t0;
  const mid = setTimeout(
    () => {
      cMid = fleet.received();
      tMid = performance.now();
    },
    (o.seconds * 1000) / 3,
  );
  const published = await publisher.run(publishRate, o.seconds * 1000);
  clearTimeout(mid);
  const t1 = performance.now();
  const c1 = fleet.received();

  const expected = published * subscribers;
  // Wait for stragglers; give up at the limit, or after 1 s without progress (they were dropped).
  let last = c1;
  let lastProgress = performance.now();
  await waitUntil(() => {
    const c = fleet.received() - c0;
    if (c >= expected) return true;
    if (c !== last) {
      last = c;
      lastProgress = performance.now();
    }
    return performance.now() - lastProgress > 1000;
  }, o.drainMs);
  const t2 = performance.now();
  const c2 = fleet.received();
  const srv1 = procCpuSeconds(o.serverPid);
  const hlp1 = helperCpu();
  const genProcs = fleet.cpu().map((x, i) => x - gen0[i]!);
  const gen = genProcs.reduce((a, b) => a + b, 0);
  const machine1 = machineBusySeconds();
  const irq = machineIrqSeconds() - irq0;

  const got = c2 - c0;
  const [p50, p99, max] = fleet.latency.percentiles([50, 99, 100]);
  const wall = (t2 - t0) / 1000;
  const lost = Math.max(0, expected - got);
  const closed = subscribers - fleet.openCount();
  const deliveredPerSec = (c1 - cMid) / ((t1 - tMid) / 1000);
  const r: StepResult = {
    targetDeliveriesPerSec,
    subscribers,
    publishRate,
    published,
    offeredDeliveriesPerSec: (published * subscribers) / ((t1 - t0) / 1000),
    deliveredPerSec,
    expected,
    received: got,
    lost,
    lossPct: expected > 0 ? (100 * lost) / expected : 0,
    drainMs: t2 - t1,
    latencyMs: { p50: p50!, p99: p99!, max: max!, samples: fleet.latency.count },
    serverCpuPct: (100 * (srv1 - srv0 + hlp1 - hlp0)) / wall,
    helperCpuPct: (100 * (hlp1 - hlp0)) / wall,
    serverNsPerDelivery: got > 0 ? ((srv1 - srv0 + hlp1 - hlp0) * 1e9) / got : NaN,
    serverRssMB: procRssBytes(o.serverPid) / 2 ** 20,
    generatorCpuPct: (100 * gen) / wall,
    generatorMaxProcCpuPct: (100 * Math.max(...genProcs)) / wall,
    generatorProcs: genProcs.length,
    generatorProcCpuPct: genProcs.map((x) => (100 * x) / wall),
    generatorCores: o.generatorCores ?? 1,
    otherCpuPct: Math.max(0, (100 * (machine1 - machine0 - irq - (srv1 - srv0) - (hlp1 - hlp0) - gen)) / wall),
    irqCpuPct: (100 * irq) / wall,
    closedDuringStep: closed,
    foreign: fleet.foreign - foreign0,
    publisherStalls: publisher.last.stalls - stalls0,
    publisherNotices: publisher.last.noticeCount - notices0,
    sustained: false,
    disturbed: false,
    attempts: 1,
  };
  r.sustained = isSustained(r);
  return r;
}

/**
 * A step is sustained when everything published arrived, at >= 90% of the asked rate during the
 * window, with p99 latency under a second and no subscriber cut off.
 */
export function isSustained(r: StepResult): boolean {
  return r.lost === 0 && r.published > 0 && r.deliveredPerSec >= 0.9 * r.targetDeliveriesPerSec && r.latencyMs.p99 <= 1000 && r.closedDuringStep === 0;
}
