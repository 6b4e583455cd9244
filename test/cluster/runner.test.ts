/**
 * `npm run cluster` (scripts/cluster.ts): a 3-node NATS cluster, gateways and nginx on loopback.
 * A client through nginx subscribes, a backend publishes through nginx, the message arrives;
 * SIGINT stops every process it started. Needs nats-server and nginx (the script says how to
 * install a missing one, and this test fails with that message).
 */
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { trackChild } from '../support/children.ts';
import { connectHello, isMsg } from '../support/raw-client.ts';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));

interface Ready {
  ready: true;
  url: string;
  ws: string;
  gateways: string[];
  pids: Record<string, number>;
}

const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

describe('npm run cluster', () => {
  it('serves clients through nginx on a NATS cluster and stops everything on SIGINT', async () => {
    const child = spawn(
      process.execPath,
      ['--import', 'tsx', 'scripts/cluster.ts', '--port', '0', '--gateways', '2', '--api-key', 'runner-key', '--prefix', 'runner'],
      { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    trackChild(child);
    let out = '';
    const ready = await new Promise<Ready>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no ready line within 90 s:\n${out}`)), 90_000);
      const onData = (b: Buffer) => {
        out += b.toString();
        const line = out.split('\n').find((l) => l.startsWith('{"ready":true'));
        if (line) {
          clearTimeout(timer);
          resolve(JSON.parse(line) as Ready);
        }
      };
      child.stdout.on('data', onData);
      child.stderr.on('data', onData);
      child.once('exit', (code) => {
        clearTimeout(timer);
        reject(new Error(`cluster runner exited (${code}):\n${out}`));
      });
    });
    expect(ready.gateways).toHaveLength(2);

    const { c } = await connectHello(ready.ws, 'json');
    c.send({ t: 'sub', id: 1, topic: 'runner.t' });
    await c.next((f) => f.t === 'subscribed');
    const r = await fetch(`${ready.url}api/publish`, {
      method: 'POST',
      headers: { authorization: 'Bearer runner-key' },
      body: JSON.stringify({ topic: 'runner.t', data: { hello: 'cluster' } }),
    });
    expect(r.status).toBe(200);
    const m = await c.next(isMsg('runner.t'));
    expect(m).toMatchObject({ t: 'msg', topic: 'runner.t', data: { hello: 'cluster' } });
    c.close();

    const exited = new Promise<number | null>((res) => child.once('exit', (code) => res(code)));
    child.kill('SIGINT');
    expect(await exited).toBe(0);
    expect(Object.entries(ready.pids).filter(([, pid]) => alive(pid))).toEqual([]);
  }, 120_000);
});
