/**
 * The memory benchmark's probe (loadtest/bench/memory-probe.ts) in a real Node process: its
 * forced GC must collect what is garbage, or every "after GC" and "JS heap" figure of
 * `bench:memory` counts garbage (on Node 20 a sync GC asked for with options collected almost
 * nothing, which went unnoticed for two sessions of measurements).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { freePort } from '../../loadtest/lib/proc.ts';

const PROBE = fileURLToPath(new URL('../../loadtest/bench/memory-probe.ts', import.meta.url));
const MB = 1024 * 1024;

/** ~40 MB of objects made and dropped, 100,000 kept; then it idles until killed. */
const PROGRAM = `
globalThis.kept = [];
let dropped = [];
for (let i = 0; i < 300000; i++) {
  const o = { a: i, b: 'x' + i, c: [i] };
  if (i % 3 === 0) globalThis.kept.push(o); else dropped.push(o);
}
dropped = null;
setInterval(() => {}, 1000);
`;

interface Mem {
  heapUsed: number;
}

async function mem(port: number, gc: boolean, deadline: number): Promise<Mem> {
  for (;;) {
    try {
      const r = await fetch(`http://127.0.0.1:${port}/mem${gc ? '' : '?gc=0'}`, { signal: AbortSignal.timeout(10_000) });
      return (await r.json()) as Mem;
    } catch (e) {
      if (Date.now() > deadline) throw new Error(`the probe did not answer on port ${port}: ${(e as Error).message}`);
      await new Promise((res) => setTimeout(res, 100));
    }
  }
}

describe('memory probe', () => {
  let child: ChildProcess | undefined;
  afterEach(() => {
    child?.kill('SIGKILL');
    child = undefined;
  });

  it('forced GC collects the garbage: heap used right after it holds only what is alive', async () => {
    const port = await freePort();
    child = spawn(process.execPath, ['--import', 'tsx', '--import', PROBE, '-e', PROGRAM], {
      env: { ...process.env, SYMPHONIC_MEMPROBE_PORT: String(port) },
      stdio: 'ignore',
    });
    const deadline = Date.now() + 20_000;
    const before = await mem(port, false, deadline);
    const after = await mem(port, true, deadline);
    // 100,000 kept objects are ~10 MB; the 200,000 dropped ones ~25 MB more until collected.
    expect(before.heapUsed - after.heapUsed).toBeGreaterThan(15 * MB);
    expect(after.heapUsed).toBeLessThan(before.heapUsed / 2);
  }, 30_000);
});
