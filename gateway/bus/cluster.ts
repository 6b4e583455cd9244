/**
 * The cluster of a gateway without peers (the embedded bus, or an engine without `joinCluster`):
 * this gateway alone. Its operations run here; asking any other node gets no answer.
 */
import type { BusCluster, ClusterAnswer, ClusterBusInfo, ClusterMember, ClusterOptions } from './bus.ts';

/** This gateway's own entry, its report read now. */
export function selfMember(o: ClusterOptions, bus: ClusterBusInfo): ClusterMember {
  return { node: o.node, self: true, lastSeen: Date.now(), intervalMs: o.intervalMs, bus, report: o.report() };
}

/** Runs `op` on this gateway, as an answer (a throw becomes `ok: false`). */
export async function serveHere(o: ClusterOptions, op: string, body: unknown): Promise<ClusterAnswer> {
  try {
    return { node: o.node, ok: true, answer: await o.serve(op, body) };
  } catch (e) {
    return { node: o.node, ok: false, error: (e as Error).message };
  }
}

export function localCluster(o: ClusterOptions, info: () => ClusterBusInfo): BusCluster {
  return {
    members: () => [selfMember(o, info())],
    async ask(target, op, body) {
      return target === null || target === o.node ? [await serveHere(o, op, body)] : [];
    },
    async leave() {},
  };
}
