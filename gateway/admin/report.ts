/**
 * What a gateway says about itself to operators and to the other gateways (its heartbeat):
 * version, uptime, connections, sessions, watched topics, draining, and message rates per second
 * over the last sampling interval (`cluster.heartbeatMs`), computed from the metrics counters.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { GatewayContext } from '../context.ts';

// Two levels below the root, in the source tree and in the production build (dist/server/).
const ROOT = fileURLToPath(new URL('../..', import.meta.url));

function readVersion(): string {
  try {
    const v = (JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version?: unknown }).version;
    return typeof v === 'string' ? v : 'unknown';
  } catch {
    return 'unknown';
  }
}

/** The gateway's version: package.json's. */
export const VERSION = readVersion();

export interface Rates {
  /** Client frames received per second. */
  readonly inPerSec: number;
  /** Deliveries written to client sockets per second (one per subscriber). */
  readonly outPerSec: number;
  /** Messages the bus delivered to this gateway per second. */
  readonly busPerSec: number;
  /** The interval the rates were measured over, ms (0 before the first full interval). */
  readonly intervalMs: number;
}

/** What a gateway reports of itself (the admin API's view adds who and when). */
export interface GatewayFigures {
  readonly version: string;
  /** Start of this gateway, ms since the epoch (its own clock). */
  readonly startedAt: number;
  readonly uptimeMs: number;
  readonly connections: number;
  readonly sessions: number;
  readonly subscriptions: number;
  /** Topics with local subscribers (watched on the bus). */
  readonly topics: number;
  readonly draining: boolean;
  readonly rates: Rates;
}

export interface GatewayReport extends GatewayFigures {
  readonly [field: string]: unknown;
}

export interface Reporter {
  report(): GatewayReport;
  /** Takes a sample of the counters: the rates are the change since the previous sample. */
  sample(now?: number): void;
}

const round1 = (x: number) => Math.round(x * 10) / 10;

export function createReporter(ctx: GatewayContext, live: { connections(): number; subscriptions(): number }, startedAt: number): Reporter {
  const counters = () => ({ in: ctx.metrics.clientFrames, out: ctx.metrics.deliveries, bus: ctx.metrics.busMessages });
  let last = { at: startedAt, ...counters() };
  let rates: Rates = { inPerSec: 0, outPerSec: 0, busPerSec: 0, intervalMs: 0 };
  return {
    report() {
      const now = Date.now();
      return {
        version: VERSION,
        startedAt,
        uptimeMs: now - startedAt,
        connections: live.connections(),
        sessions: ctx.sessions.size(),
        subscriptions: live.subscriptions(),
        topics: ctx.interest.topics(),
        draining: ctx.drain.draining,
        rates,
      };
    },
    sample(now = Date.now()) {
      const c = counters();
      const dt = now - last.at;
      if (dt <= 0) return;
      const per = (d: number) => round1((d * 1000) / dt);
      rates = { inPerSec: per(c.in - last.in), outPerSec: per(c.out - last.out), busPerSec: per(c.bus - last.bus), intervalMs: dt };
      last = { at: now, ...c };
    },
  };
}
