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
    // The count-only sockets in the native sink (CI has a C compiler), its CPU in the generator's.
    expect(run.generator).toBe('native');
    expect(result.meta.generator).toBe('native');
    expect(run.messageBytes).toBe(100);
    expect(run.steps.length).toBeGreaterThanOrEqual(2);
    for (const s of run.steps) {
      expect(s.deliveredPerSec).toBeGreaterThan(0);
      expect(s.published).toBeGreaterThan(0);
      expect(s.latencyMs.samples).toBeGreaterThan(0);
      expect(s.serverNsPerDelivery).toBeGreaterThan(0);
      expect(s.generatorCpuPct).toBeGreaterThan(0);
      expect(s.generatorProcs).toBe(2);
      expect(s.generatorMaxProcCpuPct).toBeLessThanOrEqual(s.generatorCpuPct);
    }
    const first = run.steps[0];
    expect(first.lost).toBe(0);
    expect(first.received).toBe(first.expected);
    expect(output).toContain('delivered M/s');
  }, 30_000);
});

describe('fan-out benchmark (--quick, bare target, --generator node)', () => {
  it('keeps every socket in Node and counts the same', async () => {
    const out = join(dir, 'bench-node.json');
    const { code, output } = await runBench(['--quick', '--targets', 'bare', '--generator', 'node', '--steps', '0.05', '--out', out], 25_000);
    expect(code, output).toBe(0);
    const run = JSON.parse(readFileSync(out, 'utf8')).runs[0];
    expect(run.error).toBeUndefined();
    expect(run.generator).toBe('node');
    expect(run.steps[0].generatorProcs).toBe(1);
    expect(run.steps[0].received).toBe(run.steps[0].expected);
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

describe('fan-out benchmark (--quick, peers: socketio and nats-ws), with the summary outputs', () => {
  it('runs both peers against bare and writes JSON, markdown and SVG', async () => {
    const out = join(dir, 'bench-peers.json');
    const md = join(dir, 'bench-peers.md');
    const svg = join(dir, 'bench-peers.svg');
    // --drain 10: Socket.IO queues rather than drops, so a busy machine delays its last deliveries;
    // the wait ends as soon as everything arrived.
    const { code, output } = await runBench(['--quick', '--targets', 'bare,socketio,nats-ws', '--drain', '10', '--out', out, '--md', md, '--svg', svg], 80_000);
    expect(code, output).toBe(0);
    const result = JSON.parse(readFileSync(out, 'utf8'));
    expect(result.runs.map((r: { target: string }) => r.target)).toEqual(['bare', 'socketio', 'nats-ws']);
    for (const run of result.runs) {
      expect(run.error, output).toBeUndefined();
      const first = run.steps[0];
      expect(first.published).toBeGreaterThan(0);
      // Exactly one count per delivered message: none lost, none counted twice.
      expect(first.received, `${run.target}\n${output}`).toBe(first.expected);
      expect(first.foreign).toBe(0);
      expect(first.latencyMs.samples).toBeGreaterThan(0);
      expect(first.publisherNotices).toBe(0);
    }
    const [, socketio, natsWs] = result.runs;
    // Socket.IO: 100-byte frames (the ~100-byte open packet, counted once per socket, moves the average a little).
    expect(socketio.messageBytes).toBeGreaterThan(99);
    expect(socketio.messageBytes).toBeLessThan(102);
    // nats-ws counts whole MSGs: "MSG bench.fanout 1 100\r\n" + 100 bytes + "\r\n".
    expect(natsWs.messageBytes).toBe(126);
    expect(result.comparisons.map((c: { target: string; baseline: string }) => `${c.target}/${c.baseline}`)).toEqual(['socketio/bare', 'nats-ws/bare']);
    for (const c of result.comparisons) expect(c.peer).toBe(true);
    expect(result.summary[0].rows.map((r: { target: string }) => r.target)).toEqual(['bare', 'socketio', 'nats-ws']);

    const table = readFileSync(md, 'utf8');
    for (const t of ['bare', 'socketio', 'nats-ws']) expect(table).toMatch(new RegExp(`^\\| ${t} \\|`, 'm'));
    expect(table).toContain('Reference step');
    const chart = readFileSync(svg, 'utf8');
    expect(chart.startsWith('<svg')).toBe(true);
    expect(chart.match(/<polyline /g)).toHaveLength(3);
    expect(output).toContain('## Summary');
  }, 90_000);
});
