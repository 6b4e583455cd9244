/** The few lines scale.ts prints at the end (the JSON, with --out, has every figure). */
import type { Usage } from '../lib/usage.ts';

const span = (xs: readonly (number | null)[], unit = '') => {
  const v = xs.filter((x): x is number => x !== null);
  if (v.length === 0) return '-';
  const lo = Math.min(...v);
  const hi = Math.max(...v);
  return lo === hi ? `${lo}${unit}` : `${lo}-${hi}${unit}`;
};
const n = (x: number) => x.toLocaleString('en-US');
const cpu = (u: Usage) =>
  `CPU % of a core: gateways ${span(u.cpuPct.gateways!)}, nats-server ${span(u.cpuPct.nats!)}, generators ${span(u.cpuPct.generators!)}, ` +
  `publisher ${span(u.cpuPct.publisher!)}, other ${u.otherPct}; waiting for a CPU: gateways ${span(u.runQueueWaitPct.gateways!, '%')}, generators ${span(u.runQueueWaitPct.generators!, '%')}`;

export interface ScaleResult {
  plan: { conns: number; topics: number; pubRatePerTopic: number; seconds: number };
  connect: { subscribed: number; failed: number; seconds: number; ratePerSec: number; peakRatePerSec: number; handshakeMsP99PerProcess: number[]; cpu: Usage };
  idle: { cpu: Usage };
  heldPerGateway: number[];
  memory: {
    gatewayRssMB: number[];
    gatewayKBPerConnection: number[];
    natsRssMB: { connected: number };
    generatorRssMB: number[];
    generatorKBPerConnection: number[];
  };
  publish: { deliveriesPerSec: number; failed: number; cpu: Usage };
  delivery: {
    owed: number;
    received: number;
    lost: number;
    surplus: number;
    closed: number;
    closeCodes: Record<string, number>;
    drainSeconds: number;
    natsRepublishMs: { p50: number; p99: number };
    sampled: { latencyMsP50PerProcess: number[]; latencyMsP99PerProcess: number[] };
  };
}

export function summaryLines(r: ScaleResult): string[] {
  const c = r.connect;
  const d = r.delivery;
  return [
    `connect:  ${n(c.subscribed)}/${n(r.plan.conns)} subscribed, ${c.failed} failed, in ${c.seconds} s (${n(c.ratePerSec)}/s, peak ${n(c.peakRatePerSec)}/s), handshake p99 ${span(c.handshakeMsP99PerProcess, ' ms')}`,
    `          ${cpu(c.cpu)}`,
    `held:     per gateway ${r.heldPerGateway.map(n).join(', ')}`,
    `memory:   gateway RSS ${span(r.memory.gatewayRssMB, ' MB')} (${span(r.memory.gatewayKBPerConnection, ' KB')} per connection), nats-server ${r.memory.natsRssMB.connected} MB, generators ${span(r.memory.generatorRssMB, ' MB')} (${span(r.memory.generatorKBPerConnection, ' KB')} per connection)`,
    `idle:     ${cpu(r.idle.cpu)}`,
    `publish:  ${r.plan.topics} topics x ${r.plan.pubRatePerTopic}/s for ${r.plan.seconds} s: ${n(r.publish.deliveriesPerSec)} deliveries/s, ${r.publish.failed} publishes failed`,
    `          ${cpu(r.publish.cpu)}`,
    `delivery: ${n(d.received)} of ${n(d.owed)} owed, lost ${n(d.lost)}, surplus ${n(d.surplus)}, closed ${d.closed} ${JSON.stringify(d.closeCodes)}, last one ${d.drainSeconds} s after publishing ended`,
    `latency:  sampled sockets p50 ${span(d.sampled.latencyMsP50PerProcess, ' ms')}, p99 ${span(d.sampled.latencyMsP99PerProcess, ' ms')} (NATS RePublish alone: p50 ${d.natsRepublishMs.p50} ms, p99 ${d.natsRepublishMs.p99} ms)`,
  ];
}
