/**
 * Drain: take a gateway out of service without any client noticing more than a reconnect.
 *
 *   1. readiness goes false at once (`/readyz` 503), and new WebSocket upgrades are refused
 *      (503), so the load balancer sends new and returning clients to the other gateways;
 *   2. connected clients are closed with 4000 (reconnect elsewhere) in small batches spread over
 *      80% of the window, so the other gateways take them in at a steady pace, not as a storm;
 *      each resumes its session on another gateway from its positions (nothing lost or doubled:
 *      the session record is written when its socket closes, and the resume replays the rest);
 *   3. `done` resolves once every socket is gone, or at the window's end (the rest are closed
 *      then), after which the caller closes the gateway (session writes flushed, bus closed).
 */
import { CloseCode } from '../protocol/index.ts';
import type { Logger } from './log.ts';

export interface Closable {
  close(code: number, reason: string): void;
}

export interface Drain {
  /** True from the drain's start: readiness false, upgrades refused. */
  readonly draining: boolean;
  /** Starts draining (once; a second call returns the first drain's promise). */
  start(windowMs: number): Promise<void>;
  /** Resolves when a drain, however started, has finished. */
  readonly done: Promise<void>;
}

export const DRAIN_REASON = 'draining: reconnect to another gateway';
/** How often the drain looks for sockets due to close (and whether all are gone). */
const TICK_MS = 50;

/**
 * The k-th of n sockets (in the order they were found) closes at this offset into the window:
 * evenly over the first 80%, leaving the rest for the last resumes to land elsewhere.
 */
export function closeOffset(k: number, n: number, windowMs: number): number {
  return n <= 1 ? 0 : Math.floor((k * windowMs * 0.8) / n);
}

/** `sockets()`: the open connections, looked up when the drain starts and as it goes. */
export function createDrain(sockets: () => ReadonlySet<Closable>, log: Logger): Drain {
  let draining = false;
  let started: Promise<void> | undefined;
  let finish!: () => void;
  const done = new Promise<void>((r) => (finish = r));

  function start(windowMs: number): Promise<void> {
    if (started) return started;
    draining = true;
    const t0 = Date.now();
    const open = sockets();
    const queue = [...open];
    const total = queue.length;
    log.info('draining', { connections: total, windowMs });
    started = new Promise<void>((resolve) => {
      let next = 0;
      const timer = setInterval(() => {
        const elapsed = Date.now() - t0;
        const overdue = elapsed >= windowMs;
        for (; next < total && (overdue || closeOffset(next, total, windowMs) <= elapsed); next++) {
          const c = queue[next]!;
          if (open.has(c)) c.close(CloseCode.ServerShutdown, DRAIN_REASON);
        }
        // Sockets that arrived before the upgrade refusal took effect go too, at the end.
        if (next >= total && open.size > 0 && (overdue || elapsed >= windowMs * 0.8))
          for (const c of [...open]) c.close(CloseCode.ServerShutdown, DRAIN_REASON);
        if (open.size === 0 || overdue) {
          clearInterval(timer);
          log.info('drained', { connections: total, ms: Date.now() - t0, left: open.size });
          resolve();
          finish();
        }
      }, TICK_MS);
    });
    return started;
  }

  return {
    get draining() {
      return draining;
    },
    start,
    done,
  };
}
