/**
 * The multi-process benchmarks at CI size, as a user runs them (real nats-server, gateway and
 * generator processes): scale.ts with 2 gateways, 2 generator processes and 400 connections from
 * two source addresses, every one subscribed and receiving, nothing lost; resume.ts with 100
 * clients whose gateway is killed, every one resumed on the survivors with nothing lost.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';

const ROOT = resolve(import.meta.dirname, '../..');
const dir = mkdtempSync(join(tmpdir(), 'symphonic-scale-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Runs a benchmark CLI; SIGINT if it overruns (it then stops its children itself). */
function run(script: string, args: string[], timeoutMs: number): Promise<{ code: number | null; output: string }> {
  return new Promise((done) => {
    const child = spawn(process.execPath, ['--import', 'tsx', script, ...args], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (d) => (output += d));
    child.stderr.on('data', (d) => (output += d));
    const timer = setTimeout(() => child.kill('SIGINT'), timeoutMs);
    child.on('exit', (code) => {
      clearTimeout(timer);
      done({ code, output });
    });
  });
}

describe('scale benchmark (400 connections, 2 gateways, 2 generator processes)', () => {
  it('subscribes every connection from two source addresses and delivers every message to each', async () => {
    const out = join(dir, 'scale.json');
    const args = [
      '--conns',
      '400',
      '--gateways',
      '2',
      '--workers',
      '2',
      '--addresses',
      '2',
      '--topics',
      '4',
      '--pub-rate',
      '5',
      '--seconds',
      '2',
      '--out',
      out,
    ];
    const { code, output } = await run('loadtest/bench/scale.ts', args, 40_000);
    expect(code, output).toBe(0);
    const r = JSON.parse(readFileSync(out, 'utf8'));
    expect(r.connect.subscribed).toBe(400);
    expect(r.connect.failed).toBe(0);
    expect(r.connect.localAddressesPerProcess).toEqual([2, 2]);
    expect(r.heldPerGateway).toEqual([200, 200]);
    expect(r.subscriptionsPerGateway).toEqual([200, 200]);
    expect(r.publish.failed).toBe(0);
    // Every topic got messages; every socket got exactly its topic's.
    for (const acked of r.publish.perTopicAcked) expect(acked).toBeGreaterThanOrEqual(5);
    expect(r.delivery.owed).toBe(100 * r.publish.perTopicAcked.reduce((a: number, b: number) => a + b, 0));
    expect(r.delivery.received).toBe(r.delivery.owed);
    expect(r.delivery.lost).toBe(0);
    expect(r.delivery.socketsComplete).toBe(400);
    expect(r.delivery.closed).toBe(0);
    // The sampled sockets decoded every message: numbered 1, 2, 3... without a gap.
    expect(r.delivery.sampled.sockets).toBeGreaterThan(0);
    expect(r.delivery.sampled.gaps).toBe(0);
    expect(r.memory.gatewayRssMB.every((mb: number) => mb > 0)).toBe(true);
  }, 45_000);
});

describe('resume benchmark (100 clients, 3 gateways, one killed)', () => {
  it('every client resumes on a survivor, recovered, with exactly the published sequence', async () => {
    const out = join(dir, 'resume.json');
    const { code, output } = await run('loadtest/bench/resume.ts', ['--clients', '100', '--rate', '50', '--restore', '--out', out], 40_000);
    expect(code, output).toBe(0);
    const r = JSON.parse(readFileSync(out, 'utf8'));
    expect(r.resumed).toEqual({ expected: 100, done: 100, allBack: true });
    expect(r.sessionsResumed).toBe(100);
    expect(r.recovered).toBe(100);
    expect(r.exactSequence).toBe(100);
    expect(r.lost).toBe(0);
    expect(r.wrongNumbers).toBe(0);
    expect(r.published).toBeGreaterThan(r.publishedAtKill);
    expect(r.allResubscribedMs).toBeGreaterThan(0);
    expect(r.allCaughtUpMs).toBeGreaterThanOrEqual(r.allResubscribedMs);
  }, 45_000);
});
