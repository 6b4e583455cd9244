/**
 * The NATS RPC example as its README runs it: two copies of examples/rpc-nats-service/service.ts
 * as processes in one queue group, a gateway on the NATS engine, calls with the SDK
 * (examples/rpc-http-service/call.ts): both copies answer, service errors come back as 2012.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { afterAll, describe, expect, it } from 'vitest';
import { callOnce } from '../../examples/rpc-http-service/call.ts';
import { trackChild } from '../support/children.ts';
import { useGateway } from '../support/gateway.ts';
import { startNatsServer } from '../support/nats-server.ts';

const nats = await startNatsServer();
const children: ChildProcess[] = [];
afterAll(async () => {
  const exited = (c: ChildProcess) =>
    new Promise<void>((resolve) => {
      if (c.exitCode !== null) return resolve();
      c.once('exit', () => resolve());
      c.kill('SIGTERM');
    });
  await Promise.all(children.map(exited));
  await nats.cleanup();
});

/** One copy of the example, as `npx tsx examples/rpc-nats-service/service.ts <url> <prefix>` runs it. */
function startCopy(prefix: string): Promise<void> {
  const child = spawn(process.execPath, ['--import', 'tsx', 'examples/rpc-nats-service/service.ts', nats.url, prefix], { stdio: ['ignore', 'pipe', 'pipe'] });
  trackChild(child);
  children.push(child);
  let out = '';
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`the example did not start in 20 s: ${out}`)), 20_000);
    const read = (d: Buffer) => {
      out += d.toString();
      if (!out.includes('serving')) return;
      clearTimeout(timer);
      resolve();
    };
    child.stdout!.on('data', read);
    child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
    child.once('exit', (code) => reject(new Error(`the example exited (${code}): ${out}`)));
  });
}

describe('examples: RPC to the NATS service', () => {
  it('two copies in the queue group share the calls; errors come back with their data', async () => {
    const prefix = 'exrpc';
    await Promise.all([startCopy(prefix), startCopy(prefix)]);
    const gw = await useGateway({
      demo: false,
      log: { level: 'error' },
      bus: { engine: 'nats', nats: { servers: [nats.url], prefix } },
      rpc: { methods: { 'quotes.*': { allow: 'anyone' } } },
    });
    const instances = new Set<string>();
    for (let i = 0; i < 30 && instances.size < 2; i++) {
      const line = await callOnce(gw.url, 'quotes.price', { sku: 'sku-2', qty: 1 });
      const m = /^quotes\.price -> (.*)$/.exec(line);
      expect(m, line).not.toBeNull();
      const answer = JSON.parse(m![1]!) as { total: number; instance: string };
      expect(answer.total).toBe(24.5);
      instances.add(answer.instance);
    }
    expect(instances.size).toBe(2);
    expect(await callOnce(gw.url, 'quotes.price', { sku: 'nope' })).toBe('quotes.price failed: 2012 unknown sku {"sku":"nope"}');
  }, 60_000);
});
