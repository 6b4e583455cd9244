import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';

const ROOT = resolve(import.meta.dirname, '../..');
const dir = mkdtempSync(join(tmpdir(), 'symphonic-bench-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Runs the benchmark CLI as `npm run bench` would, killed if it overruns. */
function runBench(args: string[], timeoutMs: number): Promise<{ code: number | null; output: string }> {
  return new Promise((resolvePromise) => {
    const child = spawn(process.execPath, ['--import', 'tsx', 'loadtest/bench/fanout.ts', ...args], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (d) => (output += d));
    child.stderr.on('data', (d) => (output += d));
    const timer = setTimeout(() => child.kill('SIGINT'), timeoutMs);
    child.on('exit', (code) => {
      clearTimeout(timer);
      resolvePromise({ code, output });
    });
  });
}

describe('fan-out benchmark (--quick, bare target)', () => {
  it('runs and writes sensible JSON', async () => {
    const out = join(dir, 'bench.json');
    const { code, output } = await runBench(['--quick', '--targets', 'bare', '--out', out], 25_000);
    expect(code, output).toBe(0);
    const result = JSON.parse(readFileSync(out, 'utf8'));
    expect(result.runs).toHaveLength(1);
    const run = result.runs[0];
    expect(run.target).toBe('bare');
    expect(run.error).toBeUndefined();
    expect(run.messageBytes).toBe(100);
    expect(run.steps.length).toBeGreaterThanOrEqual(2);
    for (const s of run.steps) {
      expect(s.deliveredPerSec).toBeGreaterThan(0);
      expect(s.published).toBeGreaterThan(0);
      expect(s.latencyMs.samples).toBeGreaterThan(0);
      expect(s.serverNsPerDelivery).toBeGreaterThan(0);
      expect(s.generatorCpuPct).toBeGreaterThan(0);
    }
    const first = run.steps[0];
    expect(first.lost).toBe(0);
    expect(first.received).toBe(first.expected);
    expect(output).toContain('delivered M/s');
  }, 30_000);
});

describe('fan-out benchmark (--quick, NATS targets: relay and gateway-nats)', () => {
  it('starts nats-server, publishes over JetStream, compares gateway-nats with relay', async () => {
    const out = join(dir, 'bench-nats.json');
    const { code, output } = await runBench(['--quick', '--targets', 'relay,gateway-nats', '--out', out], 50_000);
    expect(code, output).toBe(0);
    const result = JSON.parse(readFileSync(out, 'utf8'));
    expect(result.runs.map((r: { target: string }) => r.target)).toEqual(['relay', 'gateway-nats']);
    for (const run of result.runs) {
      expect(run.error, output).toBeUndefined();
      const first = run.steps[0];
      expect(first.published).toBeGreaterThan(0);
      expect(first.lost, output).toBe(0);
      expect(first.publisherNotices).toBe(0);
      // nats-server's CPU is measured and counted on the server side.
      expect(first.helperCpuPct).toBeGreaterThan(0);
      expect(first.serverCpuPct).toBeGreaterThanOrEqual(first.helperCpuPct);
    }
    expect(result.comparisons).toHaveLength(1);
    expect(result.comparisons[0]).toMatchObject({ target: 'gateway-nats', baseline: 'relay' });
    expect(output).toContain('nats %');
  }, 60_000);
});
