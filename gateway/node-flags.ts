/**
 * Node flags every launcher of the gateway passes (`npm start`, `start:prod`, the container,
 * `npm run cluster`, the test and benchmark launchers): test/gateway/node-flags.test.ts checks
 * that package.json and the Dockerfile say the same.
 *
 * `--max-semi-space-size=4` (MB): V8's young generation grows to 16 MB per semi-space (Node 20,
 * 24) under a burst of handshakes on the NATS engine, whose in-flight requests survive scavenges,
 * and V8 keeps it that size while the gateway stays busy: 32 MB, about 3 KB per connection at
 * 10,000. Capped at 4 MB the NATS engine's memory per idle connection after GC went from 4.4-6.9
 * to 2.4-3.2 KB, with no measurable cost on the publish path; 1 MB saved a little more but cost
 * 10-25% more CPU per published message (loadtest/README.md, "Memory per idle connection").
 */
export const GATEWAY_NODE_FLAGS: readonly string[] = ['--max-semi-space-size=4'];
