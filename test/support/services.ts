/**
 * `npm run test:unit` promises to need no service. vitest.unit.config.ts sets SYMPHONIC_TEST_UNIT,
 * and every harness that starts one (nats-server, a gateway process, Chromium) asks here first, so
 * a test file that needs a service but is missing from that config's SERVICE_TESTS fails at once
 * with what to do, instead of quietly turning the fast run into a slow one.
 */
export function startingService(what: string): void {
  if (process.env.SYMPHONIC_TEST_UNIT) {
    throw new Error(`this test starts ${what}, which npm run test:unit does not allow: add its file to SERVICE_TESTS in vitest.unit.config.ts`);
  }
}
