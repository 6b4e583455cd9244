/**
 * A gateway in its own process (gateway-child.ts), for the fuzz and slow-consumer tests: its
 * memory is measured apart from the test's clients, it runs on the other core, and a crash shows
 * as an exit instead of taking the test runner down.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { GatewayConfigInput } from '../../../gateway/config.ts';
import { startingService } from '../../support/services.ts';

export interface ChildGateway {
  readonly port: number;
  readonly url: string;
  readonly httpUrl: string;
  readonly process: ChildProcess;
  /** Memory after a full GC in the child (rss, heapUsed, ...). */
  memory(): Promise<{ rss: number; heapUsed: number; external: number; arrayBuffers: number; gc: boolean }>;
  stats(): Promise<{ connections: number }>;
  /** Whether the child is still running (it never exits on its own). */
  alive(): boolean;
  /** Last lines the child wrote (logs, errors), for failure messages. */
  output(): string;
  close(): Promise<void>;
}

const SCRIPT = fileURLToPath(new URL('./gateway-child.ts', import.meta.url));

export function spawnGateway(config: GatewayConfigInput, timeoutMs = 20_000): Promise<ChildGateway> {
  startingService('a gateway process');
  const child = fork(SCRIPT, [], {
    execArgv: ['--expose-gc', '--import', 'tsx'],
    env: { ...process.env, SYMPHONIC_TEST_CONFIG: JSON.stringify(config) },
    stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
  });
  let out = '';
  const keep = (chunk: Buffer) => {
    out = (out + chunk.toString()).slice(-8000);
  };
  child.stdout!.on('data', keep);
  child.stderr!.on('data', keep);
  let nextId = 1;
  const waiting = new Map<number, (m: Record<string, unknown>) => void>();
  let exited = false;
  child.on('exit', () => {
    exited = true;
  });
  child.on('message', (m: Record<string, unknown>) => {
    const w = waiting.get(m.id as number);
    if (w) {
      waiting.delete(m.id as number);
      w(m);
    }
  });
  function request<T>(cmd: string): Promise<T> {
    return new Promise((resolve, reject) => {
      if (exited) return reject(new Error(`gateway process has exited:\n${out}`));
      const id = nextId++;
      const timer = setTimeout(() => {
        waiting.delete(id);
        reject(new Error(`gateway process did not answer ${cmd}:\n${out}`));
      }, timeoutMs);
      waiting.set(id, (m) => {
        clearTimeout(timer);
        resolve(m as T);
      });
      child.send({ id, cmd });
    });
  }
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`gateway process did not start:\n${out}`));
    }, timeoutMs);
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`gateway process exited with ${code}:\n${out}`));
    });
    waiting.set(0, (m) => {
      clearTimeout(timer);
      child.removeAllListeners('exit');
      child.on('exit', () => {
        exited = true;
      });
      resolve({
        port: m.port as number,
        url: m.url as string,
        httpUrl: m.httpUrl as string,
        process: child,
        memory: () => request('memory'),
        stats: () => request('stats'),
        alive: () => !exited && child.exitCode === null && child.signalCode === null,
        output: () => out,
        async close() {
          if (exited) return;
          const gone = new Promise<void>((r) => child.once('exit', () => r()));
          await request('close').catch(() => child.kill('SIGKILL'));
          const t = setTimeout(() => child.kill('SIGKILL'), 5000);
          await gone;
          clearTimeout(t);
        },
      });
    });
  });
}
