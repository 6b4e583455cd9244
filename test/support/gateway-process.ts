/**
 * Test harness: a real gateway process, exactly as operators run it (`node --import tsx
 * gateway/main.ts`), configured through the environment (`SYMPHONIC_<path>`), listening on a
 * random loopback port. Ready when it logs its JSON `"msg":"listening"` line (which carries the
 * port). It can be stopped gracefully (SIGTERM), killed (SIGKILL: a crash, nothing flushed) and
 * its structured log lines awaited, which is what cluster and fault tests need.
 *
 * Every process started here is SIGKILLed if the test runner exits without stopping it.
 */
import { GATEWAY_NODE_FLAGS } from '../../gateway/node-flags.ts';
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { trackChild } from './children.ts';
import { startingService } from './services.ts';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const MAIN = fileURLToPath(new URL('../../gateway/main.ts', import.meta.url));
const OUTPUT_KEEP = 64 * 1024;
const LINES_KEEP = 5_000;

/** One structured log line of the gateway (gateway/log.ts). */
export interface GatewayLogLine {
  readonly time?: string;
  readonly level?: string;
  readonly msg?: string;
  readonly [field: string]: unknown;
}

export interface GatewayProcessOptions {
  /** A label for failure messages (e.g. "gw-a"); also the default `nodeId`. */
  readonly name?: string;
  /**
   * Config as an object, passed as `SYMPHONIC_<path>` variables (paths joined with `__`, every
   * value JSON-encoded so strings, numbers and lists survive exactly), e.g.
   * `{ bus: { engine: 'nats', nats: { servers: [...] } }, api: { keys: ['k'] } }`.
   */
  readonly config?: Record<string, unknown>;
  /** Raw environment variables, applied after `config` (e.g. `{ SYMPHONIC_bus__engine: 'nats' }`). */
  readonly env?: Readonly<Record<string, string>>;
  /** Extra Node flags before the entry point (e.g. `--cpu-prof` for a benchmark's profile). */
  readonly nodeArgs?: readonly string[];
  /** How long to wait for the "listening" line. Default 30 s (several processes start at once on 2 cores). */
  readonly readyTimeoutMs?: number;
}

export interface GatewayProcess {
  readonly name: string;
  readonly port: number;
  /** `ws://127.0.0.1:<port>/ws` */
  readonly url: string;
  /** `http://127.0.0.1:<port>` */
  readonly httpUrl: string;
  readonly pid: number;
  readonly process: ChildProcess;
  /** Whether the process is still running. */
  readonly running: boolean;
  /** Resolves when the process has exited (at once if it already has). */
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** The structured log lines seen so far (the last few thousand). */
  logs(): readonly GatewayLogLine[];
  /** The tail of stdout + stderr, for failure messages. */
  output(): string;
  /** Resolves with the first log line (seen or future) matching `pred`. */
  waitForLog(pred: (line: GatewayLogLine) => boolean, timeoutMs?: number, what?: string): Promise<GatewayLogLine>;
  /** SIGKILL: a crash. Resolves once the process has exited. */
  kill(): Promise<void>;
  /** SIGTERM (the gateway closes its sockets with 4000 and its bus), escalated to SIGKILL after `graceMs`. */
  stop(graceMs?: number): Promise<void>;
  /** `GET /metrics` parsed: metric name (labels dropped) -> value. */
  metrics(): Promise<Record<string, number>>;
}

/** `{a: {b: 1}}` -> `{SYMPHONIC_a__b: '1'}`; every leaf JSON-encoded (config.ts parses JSON first). */
export function configEnv(config: Record<string, unknown>, path: string[] = []): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [key, value] of Object.entries(config)) {
    if (value === undefined) continue;
    const p = [...path, key];
    if (typeof value === 'object' && value !== null && !Array.isArray(value)) Object.assign(out, configEnv(value as Record<string, unknown>, p));
    else out[`SYMPHONIC_${p.join('__')}`] = JSON.stringify(value);
  }
  return out;
}

/** The parent's environment without anything that would configure the gateway behind the test's back. */
function baseEnv(): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (v === undefined || k.startsWith('SYMPHONIC_') || k === 'PORT' || k === 'HOST') continue;
    env[k] = v;
  }
  return env;
}

export function startGatewayProcess(opts: GatewayProcessOptions = {}): Promise<GatewayProcess> {
  startingService('a gateway process');
  const name = opts.name ?? 'gateway';
  const env: Record<string, string> = {
    ...baseEnv(),
    HOST: '127.0.0.1',
    PORT: '0',
    SYMPHONIC_demo: 'false',
    // SIGTERM drains (docs/deploy.md); a short window keeps stop() quick unless a test sets its own.
    SYMPHONIC_drain__windowMs: '2000',
    SYMPHONIC_nodeId: JSON.stringify(name),
    ...configEnv(opts.config ?? {}),
    ...opts.env,
  };
  // The "listening" line is logged at info: a quieter level would hide it.
  if (env.SYMPHONIC_log__level?.replace(/"/g, '') !== 'debug') env.SYMPHONIC_log__level = '"info"';

  const child = spawn(process.execPath, [...GATEWAY_NODE_FLAGS, ...(opts.nodeArgs ?? []), '--import', 'tsx', MAIN], {
    cwd: ROOT,
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  trackChild(child);
  let output = '';
  const lines: GatewayLogLine[] = [];
  const waiters = new Set<() => void>();
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    child.once('exit', (code, signal) => {
      resolve({ code, signal });
      for (const w of [...waiters]) w();
    });
  });
  let partial = '';
  child.stdout!.on('data', (chunk: Buffer) => {
    const text = chunk.toString('utf8');
    output = (output + text).slice(-OUTPUT_KEEP);
    partial += text;
    const parts = partial.split('\n');
    partial = parts.pop()!;
    for (const raw of parts) {
      if (!raw.startsWith('{')) continue;
      try {
        lines.push(JSON.parse(raw) as GatewayLogLine);
      } catch {
        continue;
      }
      if (lines.length > LINES_KEEP) lines.splice(0, lines.length - LINES_KEEP);
    }
    for (const w of [...waiters]) w();
  });
  child.stderr!.on('data', (chunk: Buffer) => {
    output = (output + chunk.toString('utf8')).slice(-OUTPUT_KEEP);
  });
  const running = () => child.exitCode === null && child.signalCode === null;

  function waitForLog(pred: (line: GatewayLogLine) => boolean, timeoutMs = 15_000, what = 'a matching log line'): Promise<GatewayLogLine> {
    return new Promise((resolve, reject) => {
      let checked = 0;
      const check = () => {
        // Lines may have been trimmed from the front; re-scan from the start when that happens.
        if (checked > lines.length) checked = 0;
        for (; checked < lines.length; checked++) {
          if (pred(lines[checked]!)) {
            cleanup();
            return resolve(lines[checked]!);
          }
        }
        if (!running()) {
          cleanup();
          reject(new Error(`gateway ${name} exited (${child.exitCode ?? child.signalCode}) before ${what}:\n${output}`));
        }
      };
      const timer = setTimeout(() => {
        cleanup();
        reject(new Error(`gateway ${name}: no ${what} within ${timeoutMs} ms:\n${output}`));
      }, timeoutMs);
      const cleanup = () => {
        clearTimeout(timer);
        waiters.delete(check);
      };
      waiters.add(check);
      check();
    });
  }

  async function stop(graceMs = 10_000): Promise<void> {
    if (!running()) return void (await exited);
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
    await exited;
    clearTimeout(timer);
  }

  return waitForLog((l) => l.msg === 'listening' && typeof l.port === 'number', opts.readyTimeoutMs ?? 30_000, 'the "listening" log line').then(
    (line) => {
      const port = line.port as number;
      const httpUrl = `http://127.0.0.1:${port}`;
      return {
        name,
        port,
        url: `ws://127.0.0.1:${port}${typeof line.ws === 'string' ? line.ws : '/ws'}`,
        httpUrl,
        pid: child.pid!,
        process: child,
        get running() {
          return running();
        },
        exited,
        logs: () => lines,
        output: () => output,
        waitForLog,
        async kill() {
          if (running()) child.kill('SIGKILL');
          await exited;
        },
        stop,
        async metrics() {
          const res = await fetch(`${httpUrl}/metrics`);
          if (!res.ok) throw new Error(`gateway ${name}: GET /metrics answered ${res.status}`);
          return parsePrometheus(await res.text());
        },
      };
    },
    async (e: unknown) => {
      child.kill('SIGKILL');
      await exited;
      throw e;
    },
  );
}

/** Prometheus text -> name -> value (labels dropped; the gateway's metrics have one series each). */
export function parsePrometheus(text: string): Record<string, number> {
  const out: Record<string, number> = {};
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const m = /^([A-Za-z_:][A-Za-z0-9_:]*)(\{[^}]*\})?\s+(\S+)/.exec(line);
    if (m) out[m[1]!] = Number(m[3]);
  }
  return out;
}

/** Prints the last warnings and errors each gateway logged: after a failed test, usually the explanation. */
export function printWarnings(processes: readonly GatewayProcess[], last = 30): void {
  for (const p of processes) {
    const lines = p
      .logs()
      .filter((l) => l.level === 'warn' || l.level === 'error')
      .slice(-last);
    if (lines.length > 0) console.error(`${p.name} (${p.running ? 'running' : 'exited'}) warnings:\n  ${lines.map((l) => JSON.stringify(l)).join('\n  ')}`);
  }
}
