/** Process helpers for the benchmark: CPU and memory of a child from /proc, loopback ports, server children. */
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import net from 'node:net';

/** Linux reports utime/stime in clock ticks; CLK_TCK is 100 on this platform (`getconf CLK_TCK`). */
const CLK_TCK = 100;

/** User + system CPU seconds used so far by a process (all its threads), from /proc/<pid>/stat. */
export function procCpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'latin1');
  // Fields after the command name, which is in parentheses and may itself contain spaces.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // utime and stime are fields 14 and 15 of the full line, i.e. 11 and 12 after `comm`.
  return (Number(fields[11]) + Number(fields[12])) / CLK_TCK;
}

/** Resident memory of a process in bytes, from /proc/<pid>/status. */
export function procRssBytes(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'latin1'));
  return m ? Number(m[1]) * 1024 : 0;
}

/** A loopback port that was free a moment ago (the child binds it right after). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as net.AddressInfo;
      srv.close(() => resolve(port));
    });
  });
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** Polls `cond` every `everyMs` until it holds or `timeoutMs` passes; returns whether it held. */
export async function waitUntil(cond: () => boolean, timeoutMs: number, everyMs = 5): Promise<boolean> {
  const deadline = performance.now() + timeoutMs;
  while (!cond()) {
    if (performance.now() >= deadline) return false;
    await sleep(everyMs);
  }
  return true;
}

function canConnect(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect({ host: '127.0.0.1', port });
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}

export interface ServerChild {
  readonly pid: number;
  readonly child: ChildProcess;
  /** The last lines the child wrote (stdout and stderr), for error reports. */
  logTail(): string;
  /** SIGTERM, then SIGKILL if it has not exited within 3 s. */
  stop(): Promise<void>;
}

export interface StartOptions {
  cmd: string;
  args: string[];
  cwd: string;
  env: Record<string, string>;
  port: number;
  readyTimeoutMs?: number;
}

/**
 * Starts a server as a child process and resolves once it is ready: it printed a line with
 * `"msg":"listening"` or its port accepts a connection. Rejects (with its last output) if it
 * exits first or is not ready within the timeout.
 */
export async function startServer(o: StartOptions): Promise<ServerChild> {
  const child = spawn(o.cmd, o.args, { cwd: o.cwd, env: { ...process.env, ...o.env }, stdio: ['ignore', 'pipe', 'pipe'] });
  const tail: string[] = [];
  let listening = false;
  let exited: string | null = null;
  const onLine = (line: string) => {
    if (line.includes('"msg":"listening"')) listening = true;
    tail.push(line);
    if (tail.length > 40) tail.shift();
  };
  for (const stream of [child.stdout!, child.stderr!]) {
    let partial = '';
    stream.setEncoding('utf8');
    stream.on('data', (s: string) => {
      const lines = (partial + s).split('\n');
      partial = lines.pop()!;
      if (partial.length > 4096) partial = partial.slice(-4096);
      lines.forEach(onLine);
    });
  }
  const exitPromise = new Promise<void>((resolve) =>
    child.once('exit', (code, sig) => {
      exited = `exited (code ${code}, signal ${sig})`;
      resolve();
    }),
  );
  child.once('error', (e) => {
    exited = `failed to start: ${e.message}`;
  });

  const server: ServerChild = {
    pid: child.pid ?? -1,
    child,
    logTail: () => tail.join('\n'),
    async stop() {
      if (exited) return;
      child.kill('SIGTERM');
      const killer = setTimeout(() => child.kill('SIGKILL'), 3000);
      await exitPromise;
      clearTimeout(killer);
    },
  };

  const deadline = performance.now() + (o.readyTimeoutMs ?? 20_000);
  while (!listening) {
    if (exited) throw new Error(`server ${exited}:\n${server.logTail()}`);
    if (performance.now() > deadline) {
      await server.stop();
      throw new Error(`server not ready within ${o.readyTimeoutMs ?? 20_000} ms:\n${server.logTail()}`);
    }
    if (await canConnect(o.port)) break;
    await sleep(100);
  }
  return server;
}

/** The machine's first /proc/stat line in ticks: user nice system idle iowait irq softirq steal ... (guest time is already inside user). */
function machineTicks(): number[] {
  return readFileSync('/proc/stat', 'latin1').split('\n', 1)[0]!.trim().split(/\s+/).slice(1).map(Number);
}

/** CPU seconds the whole machine spent busy (all cores, everything but idle and iowait), from /proc/stat. */
export function machineBusySeconds(): number {
  const t = machineTicks();
  return (t[0]! + t[1]! + t[2]! + t[5]! + t[6]! + t[7]!) / CLK_TCK;
}

/**
 * CPU seconds the whole machine spent in interrupts and softirqs (all cores), from /proc/stat. On
 * loopback this is mostly the benchmark's own network work that the kernel charged to no process
 * (packet delivery run outside the sender's time slice, e.g. while a CPU-capped server waits).
 */
export function machineIrqSeconds(): number {
  const t = machineTicks();
  return (t[5]! + t[6]!) / CLK_TCK;
}
