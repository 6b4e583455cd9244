/** The benchmark targets by name. `bare` is the baseline every other target is compared with. */
import { bareTarget } from './bare.ts';
import { gatewayTarget } from './gateway.ts';
import type { Target } from './types.ts';

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
  gateway: gatewayTarget('gateway', 'Symphonic gateway, embedded (memory) bus', { ...BENCH_GATEWAY_ENV, SYMPHONIC_bus__engine: 'memory' }),
  // Next: gatewayTarget('gateway-nats', 'Symphonic gateway, NATS JetStream bus', { ...BENCH_GATEWAY_ENV, SYMPHONIC_bus__engine: 'nats', ... }),
  // plus starting nats-server before it (a `start` that wraps both).
};

export type { BenchClient, Target } from './types.ts';
