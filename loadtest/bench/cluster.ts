/**
 * A NATS deployment on this machine for the multi-gateway benchmarks (scale.ts, resume.ts): one
 * nats-server (JetStream, temporary store, random loopback port; test/support/nats-server.ts),
 * the deployment's stream created before any gateway starts (exactly as the NATS engine creates
 * it, so G gateways starting at once do not race to create it), then G gateway processes
 * (gateway/main.ts, configured through SYMPHONIC_* variables; test/support/gateway-process.ts).
 */
import { connect } from 'nats';
import { resolveOptions } from '../../gateway/bus/nats/options.ts';
import { ensureStream } from '../../gateway/bus/nats/stream.ts';
import { startGatewayProcess, type GatewayProcess } from '../../test/support/gateway-process.ts';
import { startNatsServer, type NatsServer } from '../../test/support/nats-server.ts';

export interface BenchCluster {
  readonly nats: NatsServer;
  readonly prefix: string;
  readonly gateways: GatewayProcess[];
  /** Stops every gateway still running (SIGTERM, then SIGKILL after `graceMs`) and nats-server, and removes the store. */
  stop(graceMs?: number): Promise<void>;
}

export interface ClusterOptions {
  readonly gateways: number;
  /** The deployment prefix (stream, buckets, subjects). */
  readonly prefix: string;
  /** Gateway config beyond the bus (limits, api keys...), as for startGatewayProcess. */
  readonly config?: Record<string, unknown>;
  /** Extra nats-server config lines. */
  readonly natsConfig?: string;
}

export async function startCluster(o: ClusterOptions): Promise<BenchCluster> {
  const nats = await startNatsServer(o.natsConfig ? { extraConfig: o.natsConfig } : {});
  const gateways: GatewayProcess[] = [];
  const stop = async (graceMs = 5000) => {
    await Promise.allSettled(gateways.map((g) => g.stop(graceMs)));
    await nats.cleanup();
  };
  try {
    const nc = await connect({ servers: nats.url, name: 'symphonic-bench-setup' });
    try {
      await ensureStream(await nc.jetstreamManager(), resolveOptions({ servers: nats.url, prefix: o.prefix }));
    } finally {
      await nc.close();
    }
    const config = { ...o.config, bus: { engine: 'nats', nats: { servers: [nats.url], prefix: o.prefix } } };
    const started = await Promise.allSettled(
      Array.from({ length: o.gateways }, (_, i) => startGatewayProcess({ name: `gw-${i}`, config, readyTimeoutMs: 90_000 })),
    );
    for (const s of started) if (s.status === 'fulfilled') gateways.push(s.value);
    const failed = started.find((s) => s.status === 'rejected');
    if (failed) throw (failed as PromiseRejectedResult).reason;
  } catch (e) {
    await stop(1000);
    throw e;
  }
  return { nats, prefix: o.prefix, gateways, stop };
}

/**
 * Ctrl-C (or SIGTERM) runs `stop` (generators, gateways, nats-server and its store) before exiting:
 * a signal skips `finally` blocks, and the processes would outlive the benchmark.
 */
export function stopOnSignal(stop: () => Promise<unknown>): void {
  const handler = (signal: NodeJS.Signals) => {
    console.error(`${signal}: stopping`);
    void stop().finally(() => process.exit(130));
  };
  process.once('SIGINT', handler);
  process.once('SIGTERM', handler);
}

/** The warnings and errors each gateway logged, counted by message and error (retries, timeouts, refusals). */
export function warningCounts(gateways: readonly GatewayProcess[]): Record<string, number>[] {
  return gateways.map((g) => {
    const counts: Record<string, number> = {};
    for (const l of g.logs()) {
      if (l.level !== 'warn' && l.level !== 'error') continue;
      const key = typeof l.error === 'string' ? `${String(l.msg)}: ${l.error.slice(0, 100)}` : String(l.msg);
      counts[key] = (counts[key] ?? 0) + 1;
    }
    return counts;
  });
}
