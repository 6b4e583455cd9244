/**
 * Prometheus metrics on prom-client, one registry per gateway (several gateways may share a
 * process in tests). The hot path only bumps plain numbers, once per bus message and never per
 * delivery: deliveries and bytes out are the native subscriber counts times the encoded size,
 * read from uWS, and prom-client reads the numbers when `/metrics` is scraped. Histograms are
 * observed once per message (fan-out) and once per publish (publish to ack).
 *
 * Names follow Prometheus conventions: `symphonic_` prefix, `_total` counters, base units
 * (`_seconds`, `_bytes`). Default Node process metrics (CPU, memory, GC, event-loop lag as
 * `nodejs_eventloop_lag_*`) come from prom-client's collectDefaultMetrics.
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { BusFigure } from './bus/bus.ts';

/** What presence reports for /metrics. */
export interface PresenceFigures {
  readonly topics: number;
  readonly frames: number;
  readonly pushedBytes: number;
  readonly batches: number;
}
export interface Gauges {
  connections: number;
  sessions: number;
  subscriptions: number;
  topics: number;
  busStatus: string;
  draining: boolean;
}

/** What the gateway's paths bump (plain numbers: no label lookups on the hot path). */
export interface Counts {
  busMessages: number;
  /** Socket writes made by fan-out (native subscribers per message, summed). */
  deliveries: number;
  /** Bytes handed to uWS by fan-out (frame size times its subscribers). */
  bytesOut: number;
  /** Fan-out encodes that failed (a message no encoding could carry); the message was skipped. */
  encodeFailures: number;
  clientFrames: number;
  bytesIn: number;
  invalidFrames: number;
  slowConsumers: number;
}

export interface Metrics extends Counts {
  readonly registry: Registry;
  /** An error frame sent (a rejected request), by its code. */
  rejected(code: number): void;
  /** A subscription resumed from a position: recovered, or told it lost messages. */
  resumed(recovered: boolean): void;
  /** A `hello` with a session: resumed, or a new session instead. */
  sessionResume(resumed: boolean): void;
  /** Seconds from bus receipt to app.publish returning, one message. */
  fanoutSeconds(s: number): void;
  /** Seconds from a publish received (WebSocket `pub` or HTTP) to its answer, by outcome. */
  publishSeconds(s: number, via: 'ws' | 'http', ok: boolean): void;
  /** Sets what the presence figures read at scrape time. */
  presence(read: () => PresenceFigures): void;
  /** A peer-channel signal the gateway passed on (a client's `send` with `$peer` data), by operation. */
  peerSignal(op: string): void;
  /** An RPC call ended, by outcome (ok, service_error, timeout, no_responders, too_large, unknown_method, denied, error, limited, abandoned). */
  rpcCall(outcome: string): void;
  /** Sets what /metrics reads at scrape time: gauges and the bus engine's own figures. */
  source(read: () => Gauges, figures?: () => readonly BusFigure[]): void;
  render(): Promise<string>;
}

const LATENCY_BUCKETS = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 15];

export function createMetrics(labels: { node: string; engine: string } = { node: '', engine: '' }): Metrics {
  const registry = new Registry();
  registry.setDefaultLabels(labels);
  collectDefaultMetrics({ register: registry });
  // Gauges named like counters (prom-client's), which Prometheus' linter (promtool) rejects.
  for (const name of ['nodejs_active_handles_total', 'nodejs_active_requests_total', 'nodejs_active_resources_total']) registry.removeSingleMetric(name);
  const counts: Counts = { busMessages: 0, deliveries: 0, bytesOut: 0, encodeFailures: 0, clientFrames: 0, bytesIn: 0, invalidFrames: 0, slowConsumers: 0 };
  let read: () => Gauges = () => ({ connections: 0, sessions: 0, subscriptions: 0, topics: 0, busStatus: 'starting', draining: false });
  let figures: () => readonly BusFigure[] = () => [];

  /** A counter whose value is read at scrape time. */
  const scraped = (name: string, help: string, value: () => number) =>
    new Counter({
      name,
      help,
      registers: [registry],
      collect() {
        this.reset();
        this.inc(value());
      },
    });
  /** A counter whose value is one of `counts`. */
  const counted = (name: string, help: string, key: keyof Counts) => scraped(name, help, () => counts[key]);
  const gauge = (name: string, help: string, value: (g: Gauges) => number) =>
    new Gauge({
      name,
      help,
      registers: [registry],
      collect() {
        this.set(value(read()));
      },
    });

  counted('symphonic_bus_messages_received_total', 'Messages the bus delivered to this gateway.', 'busMessages');
  counted('symphonic_messages_out_total', 'Messages written to client sockets by fan-out (one per subscriber).', 'deliveries');
  counted('symphonic_bytes_out_total', 'Bytes written to client sockets by fan-out.', 'bytesOut');
  counted('symphonic_fanout_encode_failures_total', 'Bus messages no encoding could carry (skipped).', 'encodeFailures');
  counted('symphonic_messages_in_total', 'Frames received from clients.', 'clientFrames');
  counted('symphonic_bytes_in_total', 'Bytes of frames received from clients.', 'bytesIn');
  counted('symphonic_invalid_frames_total', 'Client frames that failed to decode or validate.', 'invalidFrames');
  counted('symphonic_slow_consumers_total', 'Sockets cut off because their outbound buffer passed its limit (they resume).', 'slowConsumers');

  gauge('symphonic_connections', 'Open WebSocket connections.', (g) => g.connections);
  gauge('symphonic_sessions', 'Sessions held by this gateway (attached or awaiting resume).', (g) => g.sessions);
  gauge('symphonic_subscriptions', 'Subscriptions of the open connections.', (g) => g.subscriptions);
  gauge('symphonic_topics_watched', 'Topics with local subscribers (one bus subscription each).', (g) => g.topics);
  gauge('symphonic_bus_ready', '1 while the bus is connected and ready (NATS: the connection is up), else 0.', (g) => (g.busStatus === 'ready' ? 1 : 0));
  gauge('symphonic_draining', '1 while this gateway drains (readiness false), else 0.', (g) => (g.draining ? 1 : 0));
  new Gauge({
    name: 'symphonic_bus_status',
    help: "1 for the bus engine's current status (starting, ready, degraded, closed).",
    labelNames: ['status'],
    registers: [registry],
    collect() {
      this.reset();
      this.set({ status: read().busStatus }, 1);
    },
  });

  const peerSignals = new Counter({
    name: 'symphonic_peer_signals_total',
    help: 'Peer-channel signals passed on (direct messages with $peer data), by operation (data: channel messages relayed).',
    labelNames: ['op'],
    registers: [registry],
  });
  const rejections = new Counter({
    name: 'symphonic_rejections_total',
    help: 'Error frames sent to clients (rejected requests), by error code.',
    labelNames: ['code'],
    registers: [registry],
  });
  const resumes = new Counter({
    name: 'symphonic_resumes_total',
    help: 'Subscriptions resumed from a position, by outcome (recovered: every missed message replayed; lost: a fresh snapshot).',
    labelNames: ['outcome'],
    registers: [registry],
  });
  const sessionResumes = new Counter({
    name: 'symphonic_session_resumes_total',
    help: "Hellos offering a session, by outcome (resumed, or new: expired, unknown or not this user's).",
    labelNames: ['outcome'],
    registers: [registry],
  });
  const rpcCalls = new Counter({
    name: 'symphonic_rpc_calls_total',
    help: 'RPC calls to backend services, by outcome (abandoned: the caller disconnected first).',
    labelNames: ['outcome'],
    registers: [registry],
  });
  const fanout = new Histogram({
    name: 'symphonic_fanout_seconds',
    help: 'Bus receipt to app.publish returning, per message (encode once per encoding, native write to every subscriber).',
    buckets: LATENCY_BUCKETS,
    registers: [registry],
  });
  const publish = new Histogram({
    name: 'symphonic_publish_seconds',
    help: 'Publish received (WebSocket pub with id, or HTTP) to its answer (ack, or error).',
    labelNames: ['via', 'outcome'],
    buckets: LATENCY_BUCKETS,
    registers: [registry],
  });

  // Presence (gateway/presence/): what it keeps and what it sends, read at scrape time.
  let presenceRead: () => PresenceFigures = () => ({ topics: 0, frames: 0, pushedBytes: 0, batches: 0 });
  const presenceMetric = (name: string, help: string, key: keyof PresenceFigures) => scraped(name, help, () => presenceRead()[key]);
  new Gauge({
    name: 'symphonic_presence_topics',
    help: 'Presence topics this gateway watches (members here, or subscribers being served).',
    registers: [registry],
    collect() {
      this.set(presenceRead().topics);
    },
  });
  presenceMetric(
    'symphonic_presence_frames_total',
    'Presence frames pushed to subscribers (one per topic per interval at most; encoded once per encoding).',
    'frames',
  );
  presenceMetric('symphonic_presence_bytes_out_total', 'Bytes of pushed presence frames written to client sockets.', 'pushedBytes');
  presenceMetric('symphonic_presence_batches_total', 'Presence batches sent to the other gateways.', 'batches');

  // Engine figures (e.g. NATS: keeper role, publish retries, gap repairs) as they are at scrape time.
  const engineGauges = new Map<string, Gauge | Counter>();
  const engineFigure = (f: BusFigure) => {
    let m = engineGauges.get(f.name);
    if (!m) {
      const name = `symphonic_bus_${f.name}`;
      m = f.type === 'counter' ? new Counter({ name, help: f.help, registers: [registry] }) : new Gauge({ name, help: f.help, registers: [registry] });
      engineGauges.set(f.name, m);
    }
    if (m instanceof Gauge) m.set(f.value);
    else {
      m.reset();
      m.inc(f.value);
    }
  };

  return Object.assign(counts, {
    registry,
    rejected: (code: number) => rejections.inc({ code: String(code) }),
    resumed: (recovered: boolean) => resumes.inc({ outcome: recovered ? 'recovered' : 'lost' }),
    sessionResume: (resumed: boolean) => sessionResumes.inc({ outcome: resumed ? 'resumed' : 'new' }),
    fanoutSeconds: (s: number) => fanout.observe(s),
    rpcCall: (outcome: string) => rpcCalls.inc({ outcome }),
    peerSignal: (op: string) => peerSignals.inc({ op }),
    publishSeconds: (s: number, via: 'ws' | 'http', ok: boolean) => publish.observe({ via, outcome: ok ? 'ok' : 'error' }, s),
    presence(r: () => PresenceFigures) {
      presenceRead = r;
    },
    source(r: () => Gauges, f?: () => readonly BusFigure[]) {
      read = r;
      if (f) figures = f;
    },
    async render() {
      for (const f of figures()) engineFigure(f);
      return registry.metrics();
    },
  });
}
