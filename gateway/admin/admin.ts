/**
 * The admin service behind /api/admin/... (routes.ts) and /admin (page.ts): this gateway's report
 * sampled every `cluster.heartbeatMs`, the deployment's gateways through the Bus's cluster
 * capability (bus.ts `joinCluster`: heartbeats and requests between gateways on NATS, this
 * gateway alone on the embedded bus), a few minutes of history for the dashboard's charts, and
 * the operations another gateway may ask this one to run (`serve`).
 */
import { CloseCode } from '../../protocol/index.ts';
import type { BusCluster, ClusterAnswer, ClusterMember } from '../bus/bus.ts';
import { CLUSTER_MISSED_BEATS } from '../bus/bus.ts';
import { localCluster } from '../bus/cluster.ts';
import type { Connection } from '../connection/connection.ts';
import type { GatewayContext } from '../context.ts';
import { createReporter, type GatewayFigures, type GatewayReport, type Rates } from './report.ts';

/** How long a request to the other gateways waits for their answers. */
export const ASK_TIMEOUT_MS = 2_000;
/** How much history the charts get. */
export const HISTORY_MS = 5 * 60_000;
/** Operations (`serve`) never take more than this many characters of input. */
const MAX_FIELD = 256;

/** One gateway as the admin API shows it. */
export interface GatewayView extends GatewayFigures {
  readonly node: string;
  /** The gateway answering this request. */
  readonly self: boolean;
  readonly bus: { readonly engine: string; readonly status: string; readonly keeper: boolean | null };
  /** When the answering gateway last heard from it (ms since the epoch); now for itself. */
  readonly lastSeen: number;
  readonly lastSeenAgoMs: number;
}

/** One point of the charts: every gateway's figures at `t`. */
export interface HistorySample {
  readonly t: number;
  readonly gateways: readonly { node: string; connections: number; sessions: number; inPerSec: number; outPerSec: number }[];
}

export type DisconnectTarget = { session: string; user?: undefined } | { user: string; session?: undefined };

export interface Admin {
  readonly cluster: BusCluster;
  readonly intervalMs: number;
  /** Staleness bound: a gateway not heard from for this long is dropped from the view. */
  readonly staleAfterMs: number;
  gateways(): GatewayView[];
  /** Samples newer than `since` (ms since the epoch), oldest first. */
  history(since: number): HistorySample[];
  /** Closes this gateway's sockets of a session or of a user with 4504 (Kicked); how many. */
  disconnectHere(target: DisconnectTarget, reason: string): number;
  /** Asks `target` (or every gateway) and also names the known gateways that did not answer. */
  ask(target: string | null, op: string, body: unknown): Promise<{ answers: ClusterAnswer[]; unanswered: string[] }>;
  close(): Promise<void>;
}

const num = (x: unknown) => (typeof x === 'number' && Number.isFinite(x) ? x : 0);

function view(m: ClusterMember, now: number): GatewayView {
  const r = m.report as Partial<GatewayReport>;
  const rates = (r.rates ?? {}) as Partial<Rates>;
  const age = Math.max(0, now - m.lastSeen);
  return {
    node: m.node,
    self: m.self,
    version: typeof r.version === 'string' ? r.version : 'unknown',
    startedAt: num(r.startedAt),
    uptimeMs: num(r.uptimeMs) + age,
    connections: num(r.connections),
    sessions: num(r.sessions),
    subscriptions: num(r.subscriptions),
    topics: num(r.topics),
    rates: { inPerSec: num(rates.inPerSec), outPerSec: num(rates.outPerSec), busPerSec: num(rates.busPerSec), intervalMs: num(rates.intervalMs) },
    draining: r.draining === true,
    bus: {
      engine: String(m.bus?.engine ?? 'unknown'),
      status: String(m.bus?.status ?? 'unknown'),
      keeper: typeof m.bus?.keeper === 'boolean' ? m.bus.keeper : null,
    },
    lastSeen: m.lastSeen,
    lastSeenAgoMs: age,
  };
}

const str = (x: unknown) => (typeof x === 'string' && x.length > 0 && x.length <= MAX_FIELD ? x : undefined);

export function createAdmin(ctx: GatewayContext, open: () => ReadonlySet<Connection>, startedAt: number): Admin {
  const intervalMs = ctx.config.cluster.heartbeatMs;
  const node = ctx.config.nodeId;
  const reporter = createReporter(
    ctx,
    {
      connections: () => open().size,
      subscriptions() {
        let n = 0;
        for (const c of open()) n += c.subs.size;
        return n;
      },
    },
    startedAt,
  );

  function disconnectHere(target: DisconnectTarget, reason: string): number {
    const conns: Connection[] =
      target.user !== undefined
        ? ctx.policy.limits.connectionsOf(target.user)
        : [...open()].filter((c) => c.session?.id === target.session && c.session.holder === c);
    for (const c of conns) c.close(CloseCode.Kicked, reason);
    return conns.length;
  }

  /** What another gateway (or this one, for a broadcast) may ask for. */
  async function serve(op: string, body: unknown): Promise<unknown> {
    const b = (body ?? {}) as Record<string, unknown>;
    switch (op) {
      case 'disconnect': {
        const reason = str(b.reason)?.slice(0, 100) ?? 'disconnected by an operator';
        const session = str(b.session);
        const user = str(b.user);
        if (session !== undefined) return { disconnected: disconnectHere({ session }, reason) };
        if (user !== undefined) return { disconnected: disconnectHere({ user }, reason) };
        throw new Error('disconnect: session or user required');
      }
      case 'session': {
        const id = str(b.id);
        return { attached: id !== undefined && [...open()].some((c) => c.session?.id === id && c.session.holder === c) };
      }
      case 'topic': {
        const topic = str(b.topic);
        return { subscribers: topic === undefined ? 0 : ctx.interest.count(topic) };
      }
      default:
        throw new Error(`unknown admin operation ${JSON.stringify(op).slice(0, 40)}`);
    }
  }

  const options = { node, intervalMs, report: () => ({ ...reporter.report() }), serve };
  const cluster = ctx.bus.joinCluster?.(options) ?? localCluster(options, () => ({ engine: ctx.bus.engine, status: ctx.bus.status(), keeper: null }));

  const samples: HistorySample[] = [];
  const keep = Math.max(2, Math.ceil(HISTORY_MS / intervalMs));
  const tick = setInterval(() => {
    const now = Date.now();
    reporter.sample(now);
    const gateways = cluster
      .members()
      .map((m) => view(m, now))
      .map((g) => ({
        node: g.node,
        connections: g.connections,
        sessions: g.sessions,
        inPerSec: g.rates.inPerSec,
        outPerSec: g.rates.outPerSec,
      }));
    samples.push({ t: now, gateways });
    if (samples.length > keep) samples.splice(0, samples.length - keep);
  }, intervalMs);

  let closed = false;
  return {
    cluster,
    intervalMs,
    staleAfterMs: CLUSTER_MISSED_BEATS * intervalMs,
    gateways() {
      const now = Date.now();
      return cluster.members().map((m) => view(m, now));
    },
    history(since) {
      let i = samples.length;
      while (i > 0 && samples[i - 1]!.t > since) i--;
      return samples.slice(i);
    },
    disconnectHere,
    async ask(target, op, body) {
      const known = target === null ? cluster.members().map((m) => m.node) : [target];
      const answers = await cluster.ask(target, op, body, ASK_TIMEOUT_MS);
      const answered = new Set(answers.map((a) => a.node));
      return { answers, unanswered: known.filter((n) => !answered.has(n)) };
    },
    async close() {
      if (closed) return;
      closed = true;
      clearInterval(tick);
      await cluster.leave();
    },
  };
}
