/**
 * One native sink process (sink.c): count-only subscriber sockets outside Node, whose counters
 * Node reads synchronously from a small shared file (one pread, no message passing), so a polling
 * loop can call `read()` as often as it likes.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { closeSync, existsSync, openSync, readSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { procCpuSeconds, sleep } from '../lib/proc.ts';
import { sinkSpecArgs, type SinkSpec } from './spec.ts';

/** Something to Atomics.wait on: a synchronous sleep that yields the core. */
const NAP = new Int32Array(new SharedArrayBuffer(4));

/** Sockets one sink process holds at most (the open-files limit here is 20,000 per process). */
export const SINK_MAX_SOCKETS = 19_000;
/** Sockets per source address at most: a (source, destination) pair has ~28,000 ephemeral ports. */
export const SOCKETS_PER_SOURCE = 20_000;

// The counters file: 64-bit slots, as `enum slot` in sink.c.
const FILE_BYTES = 512;
const S = {
  begin: 0,
  version: 1,
  pid: 2,
  counted: 3,
  bytes: 4,
  requested: 5,
  upgraded: 6,
  handshaken: 7,
  failed: 8,
  open: 9,
  closed: 10,
  pings: 11,
  reads: 12,
  rounds: 13,
  codes: 14,
};
const CODE_SLOTS = 16;
const ERROR_SLOT = S.codes + 2 * CODE_SLOTS;
const END_SLOT = ERROR_SLOT + 128 / 8;

export interface SinkCounters {
  /** Data messages counted (at least the count threshold; `MSG`s in stream mode) and their bytes. */
  counted: number;
  bytes: number;
  /** Sockets asked for, upgraded, through the handshake (counting), failed before that. */
  requested: number;
  upgraded: number;
  handshaken: number;
  failed: number;
  /** Counting sockets still open, and those the server closed. */
  open: number;
  closed: number;
  pings: number;
  /** recv() calls that returned data, and epoll_wait() rounds that had events (messages per read = counted / reads). */
  reads: number;
  rounds: number;
  /** Close codes the server sent to counting sockets, with how many; 1006: closed without a close frame. */
  closeCodes: Record<number, number>;
  /** Why the last socket failed, if one did. */
  lastError: string;
}

export interface SinkOptions {
  binary: string;
  host: string;
  port: number;
  path: string;
  protocol?: string;
  /** Data messages shorter than this are not counted (heartbeats). */
  minCountBytes: number;
  spec: SinkSpec;
  /** First source address (its sockets bind to it, then the next one every `perSource` sockets). */
  source: string;
  perSource?: number;
  /** Handshakes in flight at most. */
  concurrency?: number;
}

/** Where counters files go: memory-backed /dev/shm when there is one. */
function countersDir(): string {
  return existsSync('/dev/shm') ? '/dev/shm' : tmpdir();
}

export class SinkProcess {
  private readonly buf = Buffer.alloc(FILE_BYTES);
  private exited: string | null = null;
  private stderr = '';

  private constructor(
    private readonly child: ChildProcess,
    private readonly fd: number,
  ) {
    child.stderr!.setEncoding('utf8');
    child.stderr!.on('data', (s: string) => (this.stderr = (this.stderr + s).slice(-2000)));
    child.once('exit', (code, sig) => (this.exited = `exited (code ${code}, signal ${sig})`));
    child.once('error', (e) => (this.exited = `failed to start: ${e.message}`));
    // Writes to a sink that died fail with EPIPE; the exit is what gets reported.
    child.stdin!.on('error', () => {});
  }

  get pid(): number {
    return this.child.pid ?? -1;
  }

  /** Starts a sink and resolves once it has mapped its counters (no sockets yet: see `open`). */
  static async start(o: SinkOptions): Promise<SinkProcess> {
    const file = join(countersDir(), `symphonic-sink-${process.pid}-${randomBytes(6).toString('hex')}`);
    writeFileSync(file, Buffer.alloc(FILE_BYTES));
    const fd = openSync(file, 'r');
    const options: [string, string | undefined][] = [
      ['--host', o.host],
      ['--port', String(o.port)],
      ['--path', o.path],
      ['--protocol', o.protocol],
      ['--counters', file],
      ['--min-count', String(o.minCountBytes)],
      ['--src', o.source],
      ['--per-src', String(o.perSource ?? SOCKETS_PER_SOURCE)],
      ['--concurrency', String(o.concurrency ?? 200)],
    ];
    const args = [...options.flatMap(([k, v]) => (v === undefined ? [] : [k, v])), ...sinkSpecArgs(o.spec)];
    let sink: SinkProcess | undefined;
    try {
      sink = new SinkProcess(spawn(o.binary, args, { stdio: ['pipe', 'ignore', 'pipe'] }), fd);
      const deadline = performance.now() + 5000;
      while (sink.readRaw().version !== 1) {
        if (sink.exited || performance.now() > deadline) throw new Error(`native sink did not start: ${sink.exit ?? 'no counters within 5 s'}`);
        await sleep(5);
      }
      return sink;
    } catch (e) {
      if (sink) sink.kill();
      else closeSync(fd);
      throw e;
    } finally {
      // Both sides hold it open now (the sink mapped it): nothing is left behind, whatever happens.
      unlinkSync(file);
    }
  }

  /** Opens `k` more sockets (asynchronously: watch `read().handshaken` and `failed`). */
  open(k: number): void {
    if (k > 0) this.child.stdin!.write(`open ${k}\n`);
  }

  /** The counters now: one read of the shared file, retried while the sink is mid-update. */
  read(): SinkCounters {
    const r = this.readRaw();
    const closeCodes: Record<number, number> = {};
    for (let i = 0; i < CODE_SLOTS; i++) {
      const n = this.slot(S.codes + 2 * i + 1);
      if (n > 0) closeCodes[this.slot(S.codes + 2 * i)] = n;
    }
    const err = this.buf.subarray(ERROR_SLOT * 8, END_SLOT * 8);
    return { ...r, closeCodes, lastError: err.subarray(0, Math.max(0, err.indexOf(0))).toString('utf8') };
  }

  /** User + system CPU seconds the sink used so far (0 once it is gone). */
  cpuSeconds(): number {
    try {
      return procCpuSeconds(this.pid);
    } catch {
      return 0;
    }
  }

  /** Why the sink is gone, if it is (with what it wrote to stderr). */
  get exit(): string | null {
    return this.exited && `${this.exited} ${this.stderr.trim()}`.trim();
  }

  /** Ends the sink (its sockets close with it) and releases the counters file. */
  kill(): void {
    if (!this.exited) this.child.kill('SIGTERM');
    try {
      closeSync(this.fd);
    } catch {
      // already closed
    }
  }

  private slot(i: number): number {
    return this.buf.readUInt32LE(i * 8) + this.buf.readUInt32LE(i * 8 + 4) * 2 ** 32;
  }

  private readRaw(): Omit<SinkCounters, 'closeCodes' | 'lastError'> & { version: number } {
    // The sink writes slot `begin`, the block, then slot `end` with the same number: equal means whole.
    for (let attempt = 0; attempt < 1000; attempt++) {
      // Pinned to one core with the sink (--pin), spinning cannot let a preempted sink finish its
      // update: after a few tries, give the core up for a moment (a synchronous sleep).
      if (attempt >= 8) Atomics.wait(NAP, 0, 0, 1);
      readSync(this.fd, this.buf, 0, FILE_BYTES, 0);
      if (this.slot(S.begin) === this.slot(END_SLOT)) {
        return {
          version: this.slot(S.version),
          counted: this.slot(S.counted),
          bytes: this.slot(S.bytes),
          requested: this.slot(S.requested),
          upgraded: this.slot(S.upgraded),
          handshaken: this.slot(S.handshaken),
          failed: this.slot(S.failed),
          open: this.slot(S.open),
          closed: this.slot(S.closed),
          pings: this.slot(S.pings),
          reads: this.slot(S.reads),
          rounds: this.slot(S.rounds),
        };
      }
    }
    throw new Error('native sink counters: no consistent read in 1000 attempts (~1 s)');
  }
}
