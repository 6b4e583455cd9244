/**
 * `npm run test:unit`: the tests that need no service (no nats-server, no Chromium, no gateway or
 * benchmark process), so they run fast anywhere; gateways started in-process are fine. `npm test`
 * still runs everything (vitest.config.ts): this config only leaves out the files listed below,
 * and a test that needs a service but is not listed fails loudly instead of starting it
 * (SYMPHONIC_TEST_UNIT, see test/support/services.ts).
 */
import { configDefaults, defineConfig, mergeConfig } from 'vitest/config';
import base from './vitest.config.ts';

/** Test files that start nats-server, Chromium, or gateway or benchmark processes (see test/README.md). */
export const SERVICE_TESTS = [
  'test/browser/**',
  'test/cluster/**',
  'test/contract/direct-nats.test.ts',
  'test/contract/nats.test.ts',
  'test/examples/rpc-nats.test.ts',
  'test/gateway/admin-cluster.test.ts',
  'test/gateway/build.test.ts',
  'test/gateway/cli.test.ts',
  'test/gateway/drain.test.ts',
  'test/gateway/metrics.test.ts',
  'test/gateway/restore.test.ts',
  'test/gateway/resume.test.ts',
  'test/loadtest/bench-smoke.test.ts',
  'test/loadtest/peers.test.ts',
  'test/nats/cluster.test.ts',
  'test/nats/engine.test.ts',
  'test/nats/lease.test.ts',
  'test/nats/light-subs.test.ts',
  'test/nats/restart.test.ts',
  'test/nats/rpc.test.ts',
  'test/sdk/client.integration.test.ts',
  'test/sdk/publisher.integration.test.ts',
  'test/security/fuzz.test.ts',
  'test/security/slow-consumer.test.ts',
  'test/sessions/registry.test.ts',
  'test/sessions/user-index.test.ts',
];

export default mergeConfig(
  base,
  defineConfig({
    test: {
      exclude: [...configDefaults.exclude, ...SERVICE_TESTS],
      env: { SYMPHONIC_TEST_UNIT: '1' },
    },
  }),
);
