/**
 * The production build (`npm run build`, what the container runs): the bundled gateway starts
 * without tsx, serves health, and a client subscribes and receives a publish through it.
 */
import { spawn } from 'node:child_process';
import { rmSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
// @ts-expect-error plain JavaScript build script (no types)
import { buildGateway } from '../../scripts/build-gateway.mjs';
import { trackChild } from '../support/children.ts';
import { connectHello, isMsg } from '../support/raw-client.ts';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
// Two levels below the root, as dist/server/main.mjs is.
const OUT = `${ROOT}dist/server-test-${process.pid}/main.mjs`;

afterAll(() => rmSync(OUT.slice(0, OUT.lastIndexOf('/')), { recursive: true, force: true }));

describe('production build', () => {
  it('runs as plain JavaScript on node (no tsx) and serves clients', async () => {
    await (buildGateway as (out: string) => Promise<string>)(OUT);
    const child = spawn(process.execPath, [OUT], {
      cwd: ROOT,
      env: { ...process.env, HOST: '127.0.0.1', PORT: '0', SYMPHONIC_demo: 'false', SYMPHONIC_api__keys: 'build-key' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    trackChild(child);
    try {
      let out = '';
      const port = await new Promise<number>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`not listening after 20 s:\n${out}`)), 20_000);
        const onData = (b: Buffer) => {
          out += b.toString();
          const line = out.split('\n').find((l) => l.includes('"msg":"listening"') && l.endsWith('}'));
          if (line) {
            clearTimeout(timer);
            resolve((JSON.parse(line) as { port: number }).port);
          }
        };
        child.stdout.on('data', onData);
        child.stderr.on('data', onData);
        child.once('exit', (code) => reject(new Error(`exited (${code}):\n${out}`)));
      });
      expect((await fetch(`http://127.0.0.1:${port}/healthz`)).status).toBe(200);
      // The demo setting is honoured: off here.
      expect((await fetch(`http://127.0.0.1:${port}/`)).status).toBe(404);
      const { c } = await connectHello(`ws://127.0.0.1:${port}/ws`);
      c.send({ t: 'sub', id: 1, topic: 'build.t' });
      await c.next((f) => f.t === 'subscribed');
      const r = await fetch(`http://127.0.0.1:${port}/api/publish`, {
        method: 'POST',
        headers: { authorization: 'Bearer build-key' },
        body: JSON.stringify({ topic: 'build.t', data: 1 }),
      });
      expect(r.status).toBe(200);
      expect(await c.next(isMsg('build.t'))).toMatchObject({ data: 1 });
      c.close();
    } finally {
      child.kill('SIGKILL');
    }
  }, 60_000);
});
