/**
 * Memory per idle connection: each target server in turn, as its own process, gets a warm-up of
 * connections, then N more idle connections (each through the target's handshake and one
 * subscription) from separate generator processes (memory-clients.ts); once the server's RSS has
 * settled, what the N added is divided by N. The Node servers are started with memory-probe.ts
 * preloaded, which forces full GCs and reports the JS heap, so heap per connection is reported
 * beside RSS, and RSS both as the process left it and after forced GCs.
 *
 *   npm run bench:memory -- [--targets bare,relay,gateway,gateway-nats] [--conns 10000,19000]
 *                           [--per-process 10000] [--concurrency 200] [--warmup 500] [--settle 10] [--out memory.json]
 *                           [--snapshots <dir>]   (V8 heap snapshots of each Node server, before and after)
 *                           [--alloc <dir>]       (where an idle server allocates: V8's sampling heap profile over 20 s)
 *                           [--compare-tree <dir>] (also the gateway of another checkout, e.g. the previous commit)
 *                           [--watch <s>]         (after the idle reading, RSS and V8's old space every 2 s for s seconds: mean and peak)
 *
 * See loadtest/README.md ("Memory per idle connection").
 */
import { type ChildProcess, fork } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import os from 'node:os';
import { basename, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { freePort, procCpuSeconds, procRssBytes, sleep } from '../lib/proc.ts';
import type { ClientsReply, OpenRequest } from './memory-clients.ts';
import { BENCH_TOPIC, TARGETS, type StartedTarget, type Target } from './targets/index.ts';
import { setServerPreload, setServerRoot } from './targets/paths.ts';

const PROBE = fileURLToPath(new URL('./memory-probe.ts', import.meta.url));
const CLIENTS = fileURLToPath(new URL('./memory-clients.ts', import.meta.url));
/** One process holds at most ~19,900 sockets here: the server holds N plus the warm-up. */
const MAX_SOCKETS = 19_500;
/** RSS is settled once it moved less than this over the settle window... */
const SETTLE_BYTES = 512 * 1024;
/** ...and the server used at most this share of a core meanwhile... */
const SETTLE_CPU = 0.1;
/** ...and it is given up waiting after this (the figure is then marked unsettled). */
const SETTLE_MAX_MS = 120_000;
/**
 * The reading without a forced GC waits at least this long after the last connect: V8's memory
 * reducer (the GC that gives back the heap a burst grew) starts 8 s after a GC and waits for a low
 * allocation rate; at 10,000 NATS handshakes it ran 12 s after the burst's last full GC, so a
 * reading taken when RSS first held still for the settle window came before it, and counted
 * 50-60 MB of free heap pages the process gives back by itself (`--trace-gc`, 2026-12-05).
 */
const IDLE_READ_AFTER_MS = 30_000;
const KB = 1024;

interface Options {
  targets: Target[];
  conns: number[];
  perProcess: number;
  concurrency: number;
  /** Connections opened before the baseline reading (not counted). */
  warmup: number;
  settleMs: number;
  out?: string;
  /** Directory for V8 heap snapshots of each Node server, before and after the connections. */
  snapshots?: string;
  /** Directory for a sampling heap profile of each Node server over ALLOC_WINDOW_MS of idle, N connections open. */
  alloc?: string;
  /** Another checkout (e.g. a `git worktree` of the previous commit): its gateway is measured too, right before this one's. */
  compareTree?: string;
  /** Seconds of idle watched after the idle reading (0: none). */
  watchS: number;
}

function options(): Options {
  const { values: v } = parseArgs({
    options: {
      targets: { type: 'string', default: 'bare,relay,gateway,gateway-nats' },
      conns: { type: 'string', default: '10000,19000' },
      'per-process': { type: 'string', default: '10000' },
      concurrency: { type: 'string', default: '200' },
      warmup: { type: 'string', default: '500' },
      settle: { type: 'string', default: '10' },
      out: { type: 'string' },
      snapshots: { type: 'string' },
      alloc: { type: 'string' },
      'compare-tree': { type: 'string' },
      watch: { type: 'string', default: '0' },
    },
  });
  const targets = v.targets.split(',').map((name) => {
    const t = TARGETS[name.trim()];
    if (!t) throw new Error(`unknown target ${name}; known: ${Object.keys(TARGETS).join(', ')}`);
    return t;
  });
  const conns = v.conns.split(',').map(Number);
  const warmup = Number(v.warmup);
  if (!Number.isInteger(warmup) || warmup < 0) throw new Error('--warmup: a whole number');
  if (conns.some((n) => !Number.isInteger(n) || n <= 0 || n + warmup > MAX_SOCKETS)) {
    throw new Error(`--conns: whole numbers, at most ${MAX_SOCKETS} with the warm-up (${warmup})`);
  }
  return {
    targets,
    conns,
    perProcess: Number(v['per-process']),
    concurrency: Number(v.concurrency),
    warmup,
    settleMs: Number(v.settle) * 1000,
    out: v.out,
    snapshots: v.snapshots,
    alloc: v.alloc,
    compareTree: v['compare-tree'] ? resolve(v['compare-tree']) : undefined,
    watchS: Number(v.watch),
  };
}

/** The probe's figures after two forced GCs (memory-probe.ts), or undefined for a non-Node target. */
type Probe = NodeJS.MemoryUsage & { spaces: Record<string, { used: number; size: number }>; status: Record<string, number> };

/** V8's young generation, committed bytes. */
const young = (p: Probe) => p.spaces.new_space?.size ?? 0;

async function probe(port: number, gc = true): Promise<Probe | undefined> {
  try {
    const r = await fetch(`http://127.0.0.1:${port}/mem${gc ? '' : '?gc=0'}`, { signal: AbortSignal.timeout(30_000) });
    return r.ok ? ((await r.json()) as Probe) : undefined;
  } catch {
    return undefined;
  }
}

const WATCH_EVERY_MS = 2000;

/**
 * The idle server watched for `ms`: RSS (mean, peak) and V8's old space (used: its lowest and
 * highest, committed: its highest), every WATCH_EVERY_MS, nothing forced. Garbage that reaches the
 * old generation is held until V8's next full GC, which at a low promotion rate can be minutes
 * away: one reading can fall anywhere on that sawtooth; the peak over a long window cannot.
 * `fullGcs` counts the drops of old-space use (each a full GC).
 */
async function watch(pid: number, probePort: number, ms: number) {
  let rssSum = 0;
  let n = 0;
  let rssMax = 0;
  let oldUsedMin = Infinity;
  let oldUsedMax = 0;
  let oldSizeMax = 0;
  let fullGcs = 0;
  let lastOld = 0;
  for (const end = performance.now() + ms; performance.now() < end; ) {
    const rss = procRssBytes(pid);
    rssSum += rss;
    n++;
    rssMax = Math.max(rssMax, rss);
    const old = (await probe(probePort, false))?.spaces?.old_space;
    if (old) {
      if (old.used < lastOld) fullGcs++;
      lastOld = old.used;
      oldUsedMin = Math.min(oldUsedMin, old.used);
      oldUsedMax = Math.max(oldUsedMax, old.used);
      oldSizeMax = Math.max(oldSizeMax, old.size);
    }
    await sleep(WATCH_EVERY_MS);
  }
  return { rssMean: rssSum / n, rssMax, oldUsedMin, oldUsedMax, oldSizeMax, fullGcs };
}

/** Writes a heap snapshot of the server (memory-probe.ts) to `path`; false for a non-Node target. */
async function snapshot(port: number, path: string): Promise<boolean> {
  try {
    const r = await fetch(`http://127.0.0.1:${port}/snapshot?path=${encodeURIComponent(path)}`, { signal: AbortSignal.timeout(300_000) });
    return r.ok;
  } catch {
    return false;
  }
}

/** How long `--alloc` samples an idle server's allocations. */
const ALLOC_WINDOW_MS = 20_000;

/** Samples where the server allocates (memory-probe.ts) for ALLOC_WINDOW_MS, written to `path` (`promoted`: only what outlived the young generation); false for a non-Node target. */
async function allocations(port: number, path: string, promoted: boolean): Promise<boolean> {
  try {
    if (!(await fetch(`http://127.0.0.1:${port}/alloc/start${promoted ? '?promoted=1' : ''}`)).ok) return false;
    await sleep(ALLOC_WINDOW_MS);
    const stop = `http://127.0.0.1:${port}/alloc/stop?path=${encodeURIComponent(path)}${promoted ? '&promoted=1' : ''}`;
    return (await fetch(stop, { signal: AbortSignal.timeout(60_000) })).ok;
  } catch {
    return false;
  }
}

/**
 * Waits until `pid` is idle: over `windowMs` its RSS moved less than SETTLE_BYTES and it used at
 * most SETTLE_CPU of a core (work still under way, e.g. session writes queued by the handshakes,
 * holds memory that an idle server does not), and it is `notBefore` (performance.now()) or later.
 * Returns the RSS and whether it settled.
 */
async function settledRss(pid: number, windowMs: number, notBefore = 0): Promise<{ rss: number; settled: boolean }> {
  const samples: { rss: number; cpu: number; at: number }[] = [];
  const every = 250;
  const keep = Math.max(2, Math.ceil(windowMs / every) + 1);
  const deadline = performance.now() + SETTLE_MAX_MS;
  for (;;) {
    samples.push({ rss: procRssBytes(pid), cpu: procCpuSeconds(pid), at: performance.now() });
    if (samples.length > keep) samples.shift();
    const first = samples[0]!;
    const last = samples.at(-1)!;
    if (samples.length === keep) {
      const rss = samples.map((s) => s.rss);
      const cpu = (last.cpu - first.cpu) / ((last.at - first.at) / 1000);
      const still = Math.max(...rss) - Math.min(...rss) < SETTLE_BYTES && cpu <= SETTLE_CPU;
      if (still && last.at >= notBefore) return { rss: last.rss, settled: true };
    }
    if (performance.now() > deadline) return { rss: last.rss, settled: false };
    await sleep(every);
  }
}

/** A generator process (memory-clients.ts) and its replies. */
class Clients {
  readonly child: ChildProcess;
  private waiting: ((m: ClientsReply) => void) | null = null;

  constructor() {
    this.child = fork(CLIENTS, [], { execArgv: ['--import', 'tsx'], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    this.child.on('message', (m: ClientsReply) => this.waiting?.(m));
  }

  ask<T extends ClientsReply['t']>(msg: object, t: T, timeoutMs: number): Promise<Extract<ClientsReply, { t: T }>> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`generator: no ${t} within ${timeoutMs} ms`)), timeoutMs);
      this.child.once('exit', (code) => reject(new Error(`generator exited (${code})`)));
      this.waiting = (m) => {
        if (m.t !== t) return;
        clearTimeout(timer);
        this.waiting = null;
        resolve(m as Extract<ClientsReply, { t: T }>);
      };
      this.child.send(msg);
    });
  }

  async exit(): Promise<void> {
    if (this.child.exitCode !== null) return;
    const gone = new Promise((r) => this.child.once('exit', r));
    this.child.send({ t: 'exit' });
    const killer = setTimeout(() => this.child.kill('SIGKILL'), 5000);
    await gone;
    clearTimeout(killer);
  }
}

export interface MemoryRun {
  target: string;
  conns: number;
  /** Connections opened first, outside the figures (see `--warmup`). */
  warmup: number;
  /** Connections still open when the figures were taken (all generators, warm-up included). */
  open: number;
  failed: number;
  firstError?: string;
  /** Time to open the N measured connections. */
  connectMs: number;
  /** The generators' CPU while connecting, % of one core (all of them together). */
  generatorCpuPct: number;
  /** Server RSS (bytes): at start (after GC), after the warm-up (after GC), with N more idle (no forced GC), then after GC. */
  rssStart: number;
  rssBefore: number;
  rssAfter: number;
  rssAfterGc: number;
  /** Whether every RSS reading settled (else the last reading was taken). */
  settled: boolean;
  /** (rssAfter - rssBefore) / N: what each connection added, as the process left it (V8 collects when it likes). */
  rssPerConn: number;
  /**
   * V8's young generation (committed, bytes) after the warm-up and with the N connections idle. It
   * does not grow with N: a burst grows it once, up to the cap of `--max-semi-space-size` (8 MB for
   * both semi-spaces), and V8 keeps it; a warm-up that already grew it hides it from rssPerConn.
   */
  youngBefore?: number;
  youngIdle?: number;
  /** rssPerConn without the young generation's growth: what the connections themselves hold. */
  rssPerConnLessYoung?: number;
  /** (rssAfterGc - rssBefore) / N: the same after forced GCs. */
  rssAfterGcPerConn: number;
  /** (rssAfterGc - rssStart) / (N + warm-up): growth from the fresh process, start-up effects included. */
  rssFromStartPerConn: number;
  /** JS heap used right after forced GCs, per connection. */
  heapPerConn?: number;
  /** V8 heap committed (heapTotal: used plus free space V8 keeps), per connection. */
  heapTotalPerConn?: number;
  /** Off-heap memory V8 knows of (Buffers, ArrayBuffers), per connection. */
  externalPerConn?: number;
  /** The target's nats-server, when it has one: its RSS growth per connection. */
  natsRssPerConn?: number;
  /**
   * The probe's raw figures (memory-probe.ts: memoryUsage, heap spaces, RSS split) with RSS settled:
   * start, before, idle (no forced GC), after; and right after the forced GCs: beforeGc, afterGc.
   */
  probe?: { start: Probe; before: Probe; idle: Probe | undefined; after: Probe; beforeGc: Probe; afterGc: Probe };
  /** `--watch`: the idle server over that many seconds, after the idle reading (see `watch`). */
  watch?: { seconds: number; rssMeanPerConn: number; rssMaxPerConn: number; oldUsedMin: number; oldUsedMax: number; oldSizeMax: number; fullGcs: number };
}

/** Measures `target` with N idle connections; from the checkout `tree` when given (labelled `<target>@<tree's name>`). */
async function measure(target: Target, conns: number, o: Options, tree?: string): Promise<MemoryRun> {
  const label = tree ? `${target.name}@${basename(tree)}` : target.name;
  const port = await freePort();
  const probePort = await freePort();
  process.env.SYMPHONIC_MEMPROBE_PORT = String(probePort);
  setServerPreload(PROBE);
  setServerRoot(tree);
  let server: StartedTarget;
  try {
    server = await target.start(port);
  } finally {
    delete process.env.SYMPHONIC_MEMPROBE_PORT;
    setServerPreload(undefined);
    setServerRoot(undefined);
  }
  const gens: Clients[] = [];
  let settledAll = true;
  const settle = async (notBefore = 0) => {
    const r = await settledRss(server.pid, o.settleMs, notBefore);
    settledAll &&= r.settled;
    return r.rss;
  };
  /**
   * Forced GCs: the JS heap read right after them (`gcMem`); then RSS once what V8 gave back is
   * unmapped (its background threads, its memory reducer), with V8's figures at that moment (`mem`).
   * The heap is not read at that later moment: an idle NATS gateway rewrites each session's record
   * every TTL/3 (TTL/2 since), and by then 10,000 sessions had left ~9 MB of new garbage in the heap (0.6 KB per
   * connection more than a heap snapshot of the same moment finds, 2026-12-05).
   */
  const collect = async () => {
    const gcMem = await probe(probePort);
    const rss = await settle();
    return { gcMem, mem: await probe(probePort, false), rss };
  };
  const procs = Math.ceil((conns + o.warmup) / o.perProcess);
  let connectMs = 0;
  let genCpu = 0;
  const opened: Extract<ClientsReply, { t: 'opened' }>[] = [];
  /** Opens `count` more connections, spread over the generators. */
  const openMore = async (count: number) => {
    const cpu0 = gens.reduce((s, g) => s + procCpuSeconds(g.child.pid!), 0);
    const t0 = performance.now();
    const replies = await Promise.all(
      gens.map((g, i) => {
        const req: OpenRequest = {
          t: 'open',
          host: '127.0.0.1',
          port,
          target: target.name,
          topic: BENCH_TOPIC,
          count: Math.floor(count / procs) + (i < count % procs ? 1 : 0),
          concurrency: Math.max(1, Math.round(o.concurrency / procs)),
        };
        return g.ask(req, 'opened', 600_000);
      }),
    );
    connectMs += performance.now() - t0;
    genCpu += gens.reduce((s, g) => s + procCpuSeconds(g.child.pid!), 0) - cpu0;
    opened.push(...replies);
  };
  try {
    const natsPid = server.helperPids?.[0];
    // A fresh process still gives back start-up garbage (tsx's transpiling) for a while: twice.
    await collect();
    const start = await collect();
    for (let i = 0; i < procs; i++) gens.push(new Clients());
    // The warm-up: the handshake's code compiled, the allocators' and V8's first growth, memory
    // the start-up freed reused. Without it, those land on the figures (by several MB, either way).
    await openMore(o.warmup);
    const before = await collect();
    const natsBefore = natsPid ? procRssBytes(natsPid) : 0;
    const snapshotPath = (when: string) => resolve(o.snapshots!, `${label}-${conns}-${when}.heapsnapshot`);
    if (o.snapshots) await snapshot(probePort, snapshotPath('before'));
    connectMs = 0;
    genCpu = 0;
    await openMore(conns);
    const rssAfter = await settle(performance.now() + IDLE_READ_AFTER_MS);
    // The same figures as the process left them: what the RSS without a forced GC is made of.
    const idle = await probe(probePort, false);
    const watched = o.watchS > 0 ? await watch(server.pid, probePort, o.watchS * 1000) : undefined;
    if (o.alloc) {
      await allocations(probePort, resolve(o.alloc, `${label}-${conns}.heapprofile`), false);
      await allocations(probePort, resolve(o.alloc, `${label}-${conns}-promoted.heapprofile`), true);
    }
    const natsAfter = natsPid ? procRssBytes(natsPid) : 0;
    const after = await collect();
    if (o.snapshots) await snapshot(probePort, snapshotPath('after'));
    const open = (await Promise.all(gens.map((g) => g.ask({ t: 'status' }, 'status', 30_000)))).reduce((s, r) => s + r.open, 0);
    const failed = opened.reduce((s, r) => s + r.failed, 0);
    const firstError = opened.find((r) => r.firstError)?.firstError;
    return {
      target: label,
      conns,
      warmup: o.warmup,
      open,
      failed,
      ...(firstError ? { firstError } : {}),
      connectMs: Math.round(connectMs),
      generatorCpuPct: Math.round((genCpu / (connectMs / 1000)) * 100),
      rssStart: start.rss,
      rssBefore: before.rss,
      rssAfter,
      rssAfterGc: after.rss,
      settled: settledAll,
      rssPerConn: (rssAfter - before.rss) / conns,
      rssAfterGcPerConn: (after.rss - before.rss) / conns,
      rssFromStartPerConn: (after.rss - start.rss) / (conns + o.warmup),
      ...(start.mem && before.mem && after.mem && before.gcMem && after.gcMem
        ? {
            heapPerConn: (after.gcMem.heapUsed - before.gcMem.heapUsed) / conns,
            heapTotalPerConn: (after.mem.heapTotal - before.mem.heapTotal) / conns,
            externalPerConn: (after.mem.external - before.mem.external) / conns,
            probe: { start: start.mem, before: before.mem, idle, after: after.mem, beforeGc: before.gcMem, afterGc: after.gcMem },
          }
        : {}),
      ...(before.mem && idle
        ? {
            youngBefore: young(before.mem),
            youngIdle: young(idle),
            rssPerConnLessYoung: (rssAfter - before.rss - (young(idle) - young(before.mem))) / conns,
          }
        : {}),
      ...(natsPid ? { natsRssPerConn: (natsAfter - natsBefore) / conns } : {}),
      ...(watched
        ? {
            watch: {
              seconds: o.watchS,
              rssMeanPerConn: (watched.rssMean - before.rss) / conns,
              rssMaxPerConn: (watched.rssMax - before.rss) / conns,
              oldUsedMin: watched.oldUsedMin,
              oldUsedMax: watched.oldUsedMax,
              oldSizeMax: watched.oldSizeMax,
              fullGcs: watched.fullGcs,
            },
          }
        : {}),
    };
  } finally {
    await Promise.allSettled(gens.map((g) => g.exit()));
    await server.stop();
  }
}

const kb = (bytes: number | undefined) => (bytes === undefined ? '-' : (bytes / KB).toFixed(2));
const mb = (bytes: number) => (bytes / KB / KB).toFixed(1);

function table(runs: readonly MemoryRun[]): string {
  const rows = [
    '| target | conns (open) | RSS before -> after, MB | RSS / conn, KB | young gen, MB | RSS / conn less young gen | after GC: RSS / conn | JS heap / conn | V8 heap committed / conn | RSS / conn from start | nats-server RSS / conn | connect s | gen CPU % |',
    '| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |',
  ];
  const watched = runs.find((r) => r.watch)?.watch?.seconds;
  if (watched) {
    rows[0] += ` idle ${watched} s: RSS / conn mean / peak | old space used MB, min-max / committed peak | full GCs |`;
    rows[1] += ' --- | --- | --- |';
  }
  for (const r of runs) {
    const cells = [
      r.target,
      `${r.conns.toLocaleString('en-US')} (${r.open.toLocaleString('en-US')})`,
      `${mb(r.rssBefore)} -> ${mb(r.rssAfter)}${r.settled ? '' : ' (unsettled)'}`,
      kb(r.rssPerConn),
      r.youngBefore === undefined || r.youngIdle === undefined ? '-' : `${mb(r.youngBefore)} -> ${mb(r.youngIdle)}`,
      kb(r.rssPerConnLessYoung),
      kb(r.rssAfterGcPerConn),
      kb(r.heapPerConn),
      kb(r.heapTotalPerConn),
      kb(r.rssFromStartPerConn),
      kb(r.natsRssPerConn),
      (r.connectMs / 1000).toFixed(1),
      String(r.generatorCpuPct),
    ];
    if (watched) {
      const w = r.watch;
      cells.push(
        w ? `${kb(w.rssMeanPerConn)} / ${kb(w.rssMaxPerConn)}` : '-',
        w ? `${mb(w.oldUsedMin)}-${mb(w.oldUsedMax)} / ${mb(w.oldSizeMax)}` : '-',
        w ? String(w.fullGcs) : '-',
      );
    }
    rows.push(`| ${cells.join(' | ')} |`);
  }
  return rows.join('\n');
}

/**
 * Per connection between the smallest and the largest N of a target (separate runs): what the
 * extra connections added, after GC. What does not grow with N (V8's young generation, which a
 * connect storm grows to its maximum, allocator arenas) cancels out here.
 */
export interface Slope {
  target: string;
  from: number;
  to: number;
  rssPerConn: number;
  heapPerConn?: number;
}

function slopes(runs: readonly MemoryRun[]): Slope[] {
  const out: Slope[] = [];
  for (const target of new Set(runs.map((r) => r.target))) {
    const mine = runs.filter((r) => r.target === target).sort((a, b) => a.conns - b.conns);
    const [a, b] = [mine[0]!, mine.at(-1)!];
    if (a.conns === b.conns) continue;
    const n = b.conns - a.conns;
    const growth = (r: MemoryRun) => r.rssAfterGc - r.rssBefore;
    const heap = (r: MemoryRun) => (r.heapPerConn === undefined ? undefined : r.heapPerConn * r.conns);
    const [ha, hb] = [heap(a), heap(b)];
    out.push({
      target,
      from: a.conns,
      to: b.conns,
      rssPerConn: (growth(b) - growth(a)) / n,
      ...(ha === undefined || hb === undefined ? {} : { heapPerConn: (hb - ha) / n }),
    });
  }
  return out;
}

function slopeTable(s: readonly Slope[]): string {
  const rows = ['| target | between | after GC: RSS / conn, KB | JS heap / conn, KB |', '| --- | --- | --- | --- |'];
  for (const x of s)
    rows.push(`| ${x.target} | ${x.from.toLocaleString('en-US')} and ${x.to.toLocaleString('en-US')} | ${kb(x.rssPerConn)} | ${kb(x.heapPerConn)} |`);
  return rows.join('\n');
}

async function main(): Promise<void> {
  const o = options();
  const runs: MemoryRun[] = [];
  for (const conns of o.conns) {
    for (const target of o.targets) {
      // The other checkout's gateway right before this one's: the pair sees the same machine.
      const trees = o.compareTree && target.name.startsWith('gateway') ? [o.compareTree, undefined] : [undefined];
      for (const tree of trees) {
        console.error(`${target.name}${tree ? `@${basename(tree)}` : ''}: ${conns.toLocaleString('en-US')} idle connections...`);
        const r = await measure(target, conns, o, tree);
        if (r.failed > 0) console.error(`  ${r.failed} failed: ${r.firstError}`);
        console.error(`  RSS ${kb(r.rssPerConn)} KB/conn, heap ${kb(r.heapPerConn)} KB/conn`);
        runs.push(r);
      }
    }
  }
  console.log(table(runs));
  const between = slopes(runs);
  if (between.length) console.log(`\n${slopeTable(between)}`);
  if (o.out) {
    const meta = {
      date: new Date().toISOString(),
      node: process.version,
      cpus: os.cpus().length,
      host: os.hostname(),
      options: { ...o, targets: o.targets.map((t) => t.name) },
    };
    writeFileSync(o.out, JSON.stringify({ meta, runs, slopes: between }, null, 2));
    console.error(`wrote ${o.out}`);
  }
}

await main();
