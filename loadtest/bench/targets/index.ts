/** The benchmark targets by name. `bare` is the baseline every other target is compared with. */
import { bareTarget } from './bare.ts';
import { gatewayTarget } from './gateway.ts';
import { natsWsTarget } from './nats-ws.ts';
import { relayTarget } from './relay.ts';
import { socketioTarget } from './socketio.ts';
import type { Target } from './types.ts';

/** The original baseline; each target names its own (`Target.baseline`): gateway, socketio, nats-ws -> bare; gateway-nats -> relay. */
export const BASELINE = 'bare';

/**
 * Gateway settings for the benchmark: one publisher connection sends hundreds to thousands of
 * messages/s, so the per-connection and per-user frame-rate limits (ingress policy, checked once
 * per published message, never per delivery) are switched off, as are per-user connection caps
 * (10,000 anonymous subscribers); publishing from a client is allowed. Everything else is default.
 */
const BENCH_GATEWAY_ENV = {
  SYMPHONIC_CLIENT_PUBLISH: 'true', // the name in the gateway's launch contract
  SYMPHONIC_clientPublish: 'true', // the config field it maps to today
  SYMPHONIC_defaultNamespace__publish: 'anyone',
  SYMPHONIC_limits__connRatePerSec: '0',
  SYMPHONIC_limits__userRatePerSec: '0',
  SYMPHONIC_limits__maxConnectionsPerUser: '0',
};

export const TARGETS: Record<string, Target> = {
  bare: bareTarget,
  gateway: gatewayTarget(
    'gateway',
    'Symphonic gateway, embedded (memory) bus',
    { ...BENCH_GATEWAY_ENV, SYMPHONIC_bus__engine: 'memory' },
    { baseline: 'bare', maxCpuRatio: 1.1 },
  ),
  // The same with the plain map `msg` frames (no hello.compact): what the protocol overhead costs.
  'gateway-map': gatewayTarget(
    'gateway-map',
    'Symphonic gateway, embedded (memory) bus, plain map msg frames (no hello.compact)',
    { ...BENCH_GATEWAY_ENV, SYMPHONIC_bus__engine: 'memory' },
    { baseline: 'bare', maxCpuRatio: 1.1, compact: false },
  ),
  // NATS engine: its own nats-server; the publisher publishes to NATS (JetStream), as a backend
  // does. Compared with the relay, which pays the same NATS path; the target there is
  // deliveries/s only (>= 0.9x), CPU per delivery is reported.
  relay: relayTarget,
  'gateway-nats': gatewayTarget(
    'gateway-nats',
    'Symphonic gateway, NATS JetStream bus (publisher on NATS)',
    { ...BENCH_GATEWAY_ENV, SYMPHONIC_bus__engine: 'nats' },
    { baseline: 'relay', nats: true },
  ),
  // An edge gateway of a deployment whose state keeper runs on another gateway (bus.nats.keeper
  // off here): it then reads only the topics it serves, as the relay does.
  'gateway-nats-edge': gatewayTarget(
    'gateway-nats-edge',
    'Symphonic edge gateway, NATS JetStream bus, state keeper elsewhere',
    { ...BENCH_GATEWAY_ENV, SYMPHONIC_bus__engine: 'nats', SYMPHONIC_bus__nats__keeper: 'false' },
    { baseline: 'relay', nats: true },
  ),
  // Peers, measured with the same load for reference (compared with bare, not judged): Socket.IO
  // rooms, and nats-server's own WebSocket listener (the NATS path included).
  socketio: socketioTarget,
  'nats-ws': natsWsTarget,
};

export { BENCH_TOPIC } from './paths.ts';
export type { BenchClient, StartedTarget, Target } from './types.ts';
