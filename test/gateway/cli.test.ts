import { spawn } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { GATEWAY_NODE_FLAGS } from '../../gateway/node-flags.ts';
import { CloseCode } from '../../protocol/index.ts';
import { connectHello } from '../support/raw-client.ts';

/** Runs `gateway/main.ts` as `npm start` does and waits for a line matching `until` or for exit. */
function run(env: Record<string, string>, until: RegExp) {
  const child = spawn(process.execPath, [...GATEWAY_NODE_FLAGS, '--import', 'tsx', 'gateway/main.ts'], {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  return new Promise<{ out: string; code: number | null; child: typeof child }>((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`timeout; output: ${out}`));
    }, 20_000);
    const onData = (d: Buffer) => {
      out += d.toString();
      if (until.test(out)) {
        clearTimeout(timer);
        resolve({ out, code: null, child });
      }
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    child.on('exit', (code) => {
      clearTimeout(timer);
      resolve({ out, code, child });
    });
  });
}

describe('gateway command', () => {
  it('starts on PORT with the embedded bus, serves health, and on SIGTERM closes clients with 4000 and exits 0', async () => {
    const { out, child } = await run({ PORT: '0', HOST: '127.0.0.1' }, /"msg":"listening"[^\n]*\n/);
    const port = Number(/"port":(\d+)/.exec(out)![1]);
    const res = await fetch(`http://127.0.0.1:${port}/healthz`);
    expect(await res.json()).toMatchObject({ status: 'ok', engine: 'memory' });
    const { c } = await connectHello(`ws://127.0.0.1:${port}/ws`);
    const exited = new Promise<number | null>((r) => child.on('exit', r));
    child.kill('SIGTERM');
    expect(await c.closed).toMatchObject({ code: CloseCode.ServerShutdown });
    expect(await exited).toBe(0);
  });

  it('refuses to start with an allowed-origin entry that is not an origin, naming it', async () => {
    const { out, code } = await run({ PORT: '0', HOST: '127.0.0.1', SYMPHONIC_ws__allowedOrigins: 'https://ok.example,https://bad.example/path' }, /$^/);
    expect(code).toBe(1);
    expect(out).toMatch(/ws\.allowedOrigins: "https:\/\/bad\.example\/path"/);
  });

  it('exits non-zero naming the invalid field', async () => {
    const { out, code } = await run({ PORT: 'not-a-port' }, /$^/);
    expect(code).toBe(1);
    expect(out).toMatch(/port:/);
  });
});
