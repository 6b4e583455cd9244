/**
 * Generator child processes driven over IPC, for loads one process cannot hold (one process opens
 * at most about 19,900 sockets here) or drive (one core). Each child is `node --import tsx
 * <entry>`, so its PID is the Node process itself and /proc gives its CPU and memory.
 *
 * The protocol is request/reply: the parent sends a command object, the child answers with
 * messages carrying a `type`; a message `{type: 'error', message}` fails the pending request.
 * Other messages (progress) go to `onMessage`.
 */
import { spawn, type ChildProcess } from 'node:child_process';

export interface ChildMessage {
  readonly type: string;
  readonly [field: string]: unknown;
}

export interface FleetChild {
  readonly index: number;
  readonly pid: number;
  readonly process: ChildProcess;
  /** Sends `cmd` and resolves with the child's next message of type `reply`. */
  request<T extends ChildMessage>(cmd: object, reply: string, timeoutMs: number): Promise<T>;
  /** Every message that is not the reply of a pending request. */
  onMessage: ((m: ChildMessage) => void) | undefined;
  /** SIGKILL (a generator holds nothing worth flushing); resolves once it has exited. */
  kill(): Promise<void>;
}

/** Starts `count` children of `entry` and waits for each one's `{type: 'ready'}`. */
export async function startFleet(entry: string, count: number, cwd: string, readyTimeoutMs = 30_000): Promise<FleetChild[]> {
  const children = Array.from({ length: count }, (_, i) => startChild(entry, i, cwd));
  try {
    await Promise.all(children.map((c) => c.ready(readyTimeoutMs)));
  } catch (e) {
    await Promise.all(children.map((c) => c.kill()));
    throw e;
  }
  return children;
}

function startChild(entry: string, index: number, cwd: string): FleetChild & { ready(timeoutMs: number): Promise<void> } {
  const child = spawn(process.execPath, ['--import', 'tsx', entry], { cwd, stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  let exited: string | null = null;
  const exitedPromise = new Promise<void>((resolve) =>
    child.once('exit', (code, signal) => {
      exited = `generator ${index} exited (code ${code}, signal ${signal})`;
      pending?.reject(new Error(exited));
      resolve();
    }),
  );
  let pending: { type: string; resolve: (m: ChildMessage) => void; reject: (e: Error) => void } | null = null;
  const self = {
    index,
    pid: child.pid ?? -1,
    process: child,
    onMessage: undefined as ((m: ChildMessage) => void) | undefined,
    request<T extends ChildMessage>(cmd: object, reply: string, timeoutMs: number): Promise<T> {
      if (exited) return Promise.reject(new Error(exited));
      if (pending) return Promise.reject(new Error(`generator ${index}: a request is already pending`));
      return new Promise<T>((resolve, reject) => {
        const timer = setTimeout(() => {
          pending = null;
          reject(new Error(`generator ${index}: no ${reply} within ${timeoutMs} ms`));
        }, timeoutMs);
        pending = {
          type: reply,
          resolve: (m) => {
            clearTimeout(timer);
            resolve(m as T);
          },
          reject: (e) => {
            clearTimeout(timer);
            reject(e);
          },
        };
        child.send(cmd);
      });
    },
    ready(timeoutMs: number): Promise<void> {
      return new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`generator ${index} not ready within ${timeoutMs} ms`)), timeoutMs);
        pending = {
          type: 'ready',
          resolve: () => {
            clearTimeout(timer);
            resolve();
          },
          reject: (e) => {
            clearTimeout(timer);
            reject(e);
          },
        };
      });
    },
    async kill(): Promise<void> {
      if (!exited) child.kill('SIGKILL');
      await exitedPromise;
    },
  };
  child.on('message', (m: ChildMessage) => {
    const p = pending;
    if (p && (m.type === p.type || m.type === 'error')) {
      pending = null;
      if (m.type === 'error') p.reject(new Error(`generator ${index}: ${String(m.message)}`));
      else p.resolve(m);
      return;
    }
    self.onMessage?.(m);
  });
  return self;
}

/** In a child: answers each command with `handle`'s result (or an error message), one at a time. */
export function serveParent(handle: (cmd: { type: string; [k: string]: unknown }) => Promise<ChildMessage | null>): void {
  const send = (m: ChildMessage) => process.send!(m);
  let queue = Promise.resolve();
  process.on('message', (cmd: { type: string }) => {
    queue = queue.then(async () => {
      try {
        const reply = await handle(cmd);
        if (reply) send(reply);
      } catch (e) {
        send({ type: 'error', message: (e as Error).message });
      }
    });
  });
  // Orphaned (the parent died): nothing to serve any more.
  process.on('disconnect', () => process.exit(0));
  send({ type: 'ready' });
}

/** In a child: a message that answers no request (progress). */
export function notifyParent(m: ChildMessage): void {
  process.send?.(m);
}
