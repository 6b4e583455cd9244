/** The baseline target: bare-server.ts, raw 100-byte binary payloads, no protocol. */
import { startServer } from '../../lib/proc.ts';
import type { BenchClient, Target } from './types.ts';
import { REPO_ROOT, nodeTs } from './paths.ts';

/** Payload layout: f64 send time | u32 seq | u32 magic | zero padding, 100 bytes in all. */
const PAYLOAD_BYTES = 100;
const MAGIC = 0x53594d50; // "SYMP"

/** The client side of the bare protocol (also the relay's: same subscribe path and payload). */
export function bareClient(topic: string): BenchClient {
  const q = encodeURIComponent(topic);
  return {
    subscriberPath: `/ws?sub=${q}`,
    publisherPath: `/ws?pub=${q}`,
    minCountBytes: 16,
    async subscribe(ws) {
      await ws.waitFor((b, binary) => (!binary && b.toString() === 'subscribed' ? true : undefined), 10_000);
    },
    sink: { steps: [{ expect: { bytes: 'subscribed', at: 'start' } }] },
    async preparePublisher() {},
    encodePublish(sentAt, seq) {
      const b = Buffer.alloc(PAYLOAD_BYTES);
      b.writeDoubleLE(sentAt, 0);
      b.writeUInt32LE(seq >>> 0, 8);
      b.writeUInt32LE(MAGIC, 12);
      return b;
    },
    sentAt(p) {
      return p.length >= 16 && p.readUInt32LE(12) === MAGIC ? p.readDoubleLE(0) : undefined;
    },
    publisherNotice: (p) => `unexpected message to the publisher: ${p.subarray(0, 80).toString()}`,
  };
}

export const bareTarget: Target = {
  name: 'bare',
  description: 'bare uWebSockets.js pub/sub (app.publish from a setImmediate batch)',
  start: (port) => startServer({ ...nodeTs('loadtest/bench/bare-server.ts'), cwd: REPO_ROOT, env: { PORT: String(port), HOST: '127.0.0.1' }, port }),
  client: bareClient,
};
