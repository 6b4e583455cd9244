/**
 * Prometheus metrics: plain counters bumped on the paths that already run (one increment per bus
 * message, never per delivery), rendered as text on `GET /metrics`.
 */
import type { BusFigure } from './bus/bus.ts';
export interface Metrics {
  busMessages: number;
  /** Sockets written to by fan-out (sum of native subscribers over messages). */
  deliveries: number;
  /** Fan-out encodes that failed (a message no encoding could carry); the message was skipped. */
  encodeFailures: number;
  clientFrames: number;
  invalidFrames: number;
}

export function createMetrics(): Metrics {
  return { busMessages: 0, deliveries: 0, encodeFailures: 0, clientFrames: 0, invalidFrames: 0 };
}

export interface Gauges {
  connections: number;
  sessions: number;
  topics: number;
  busReady: boolean;
}

export function renderMetrics(m: Metrics, g: Gauges, node: string, engine: string, busFigures: readonly BusFigure[] = []): string {
  const labels = `{node="${node}",engine="${engine}"}`;
  const line = (name: string, type: 'counter' | 'gauge', help: string, value: number) =>
    `# HELP ${name} ${help}\n# TYPE ${name} ${type}\n${name}${labels} ${value}\n`;
  return [
    line('symphonic_connections', 'gauge', 'Open WebSocket connections.', g.connections),
    line('symphonic_sessions', 'gauge', 'Sessions held by this gateway (attached or awaiting resume).', g.sessions),
    line('symphonic_topics_watched', 'gauge', 'Topics with local subscribers (one bus subscription each).', g.topics),
    line('symphonic_bus_ready', 'gauge', '1 when the bus is ready, else 0.', g.busReady ? 1 : 0),
    line('symphonic_bus_messages_received_total', 'counter', 'Messages the bus delivered to this gateway.', m.busMessages),
    line('symphonic_deliveries_total', 'counter', 'Socket writes made by fan-out.', m.deliveries),
    line('symphonic_fanout_encode_failures_total', 'counter', 'Bus messages no encoding could carry (skipped).', m.encodeFailures),
    line('symphonic_client_frames_total', 'counter', 'Frames received from clients.', m.clientFrames),
    line('symphonic_client_invalid_frames_total', 'counter', 'Client frames that failed to decode or validate.', m.invalidFrames),
    ...busFigures.map((f) => line(`symphonic_bus_${f.name}`, f.type, f.help, f.value)),
  ].join('');
}
