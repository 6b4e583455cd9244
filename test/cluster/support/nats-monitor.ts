/**
 * A NATS cluster whose nodes serve monitoring: nats-server `/connz` shows each connection's
 * subscriptions with per-subscription message counts, which is how the cluster tests see what a
 * gateway asks of NATS.
 */
import { startNatsCluster, type NatsCluster, type NatsNode } from '../../support/nats-server.ts';

const MONITOR_LINE = /Starting http monitor on [\d.]+:(\d+)/;

/** A 3-node JetStream cluster whose nodes serve monitoring (`/connz`) on random loopback ports. */
export function startMonitoredCluster(size = 3): Promise<NatsCluster> {
  return startNatsCluster(size, { extraConfig: 'http: "127.0.0.1:-1"' });
}

/** The node's monitoring port (it changes on restart: read from the log of the current run). */
export function monitorPort(node: NatsNode): number {
  const m = MONITOR_LINE.exec(node.log());
  if (!m) throw new Error(`nats-server ${node.name} logged no monitoring port:\n${node.log()}`);
  return Number(m[1]);
}

export interface ConnSub {
  readonly subject: string;
  /** Messages the server delivered on this subscription. */
  readonly msgs: number;
  readonly node: string;
}

interface Connz {
  connections?: { name?: string; out_msgs?: number; subscriptions_list_detail?: { subject: string; msgs: number }[] }[];
}

/** Every message the NATS cluster sent to the connection named `name` (live copies, replies, consumer deliveries). */
export async function messagesSentTo(cluster: NatsCluster, name: string): Promise<number> {
  let total = 0;
  for (const node of cluster.nodes) {
    if (!node.running) continue;
    const body = (await (await fetch(`http://127.0.0.1:${monitorPort(node)}/connz?limit=100000`)).json()) as Connz;
    for (const c of body.connections ?? []) if (c.name === name) total += c.out_msgs ?? 0;
  }
  return total;
}

/**
 * The subscriptions the NATS cluster holds for the client connection named `name` (a gateway's
 * bus connection is named after its nodeId), over every running node.
 */
export async function subscriptionsOf(cluster: NatsCluster, name: string): Promise<ConnSub[]> {
  const out: ConnSub[] = [];
  let seen = 0;
  for (const node of cluster.nodes) {
    if (!node.running) continue;
    const res = await fetch(`http://127.0.0.1:${monitorPort(node)}/connz?subs=detail&limit=100000`);
    if (!res.ok) throw new Error(`connz on ${node.name}: HTTP ${res.status}`);
    const body = (await res.json()) as Connz;
    for (const c of body.connections ?? []) {
      if (c.name !== name) continue;
      seen++;
      for (const s of c.subscriptions_list_detail ?? []) out.push({ subject: s.subject, msgs: s.msgs, node: node.name });
    }
  }
  if (seen !== 1) throw new Error(`expected one NATS connection named ${name}, found ${seen}`);
  return out;
}
