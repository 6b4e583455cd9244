/**
 * /metrics on prom-client: Prometheus' own parser and linter (`promtool check metrics`, Debian
 * package `prometheus`) accepts what a busy gateway exposes, and the figures follow real traffic:
 * messages and bytes in and out, rejections by code, resumes by outcome, publish-to-ack and
 * fan-out histograms, process metrics.
 */
import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { useGateway } from '../support/gateway.ts';
import { connectHello, isMsg, isReply } from '../support/raw-client.ts';

const KEY = 'metrics-key-0123456789';
const gw = await useGateway({ api: { keys: [KEY] } });

function promtool(text: string): { status: number | null; out: string } {
  const r = spawnSync('promtool', ['check', 'metrics'], { input: text, encoding: 'utf8' });
  if (r.error) throw new Error(`promtool is required for this test but could not be run (${r.error.message}): apt-get install prometheus`);
  return { status: r.status, out: `${r.stdout}${r.stderr}` };
}

/** `name{labels} value` lines: the value of the first line whose labels contain `match`. */
function value(text: string, name: string, match = ''): number {
  for (const line of text.split('\n')) {
    if (!line.startsWith(`${name}{`) && !line.startsWith(`${name} `)) continue;
    if (match && !line.includes(match)) continue;
    return Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return NaN;
}

describe('/metrics', () => {
  it('passes promtool on a busy gateway and counts what happened', async () => {
    const { c, welcome } = await connectHello(gw.url, 'json');
    c.send({ t: 'sub', id: 1, topic: 'met.a' });
    await c.next(isReply(1));
    for (let i = 0; i < 20; i++) c.send({ t: 'pub', id: 10 + i, topic: 'met.a', data: { i } });
    await c.collect((f) => f.t === 'ack', 20);
    await c.collect(isMsg('met.a'), 20);
    c.send({ t: 'sub', id: 2, topic: 'met.a' }); // already subscribed: 2002
    await c.next(isReply(2));
    const r = await fetch(`${gw.httpUrl}/api/publish`, {
      method: 'POST',
      headers: { authorization: `Bearer ${KEY}` },
      body: JSON.stringify({ topic: 'met.a', data: 'x' }),
    });
    expect(r.status).toBe(200);
    await c.collect(isMsg('met.a'), 21);
    // A resume: the session comes back, the subscription recovers from its position.
    const last = c.frames.filter(isMsg('met.a')).at(-1) as { seq: number };
    const sub = c.frames.find(isReply(1)) as { epoch: string };
    c.close();
    await c.closed;
    const again = await connectHello(gw.url, 'json', { id: welcome.session, key: welcome.key });
    again.c.send({ t: 'sub', id: 3, topic: 'met.a', since: { seq: last.seq, epoch: sub.epoch } });
    expect(await again.c.next(isReply(3))).toMatchObject({ recovered: true });

    const res = await fetch(`${gw.httpUrl}/metrics`);
    expect(res.headers.get('content-type')).toMatch(/^text\/plain/);
    const text = await res.text();
    const lint = promtool(text);
    expect(lint, lint.out).toMatchObject({ status: 0 });

    expect(value(text, 'symphonic_messages_in_total')).toBeGreaterThanOrEqual(23);
    expect(value(text, 'symphonic_bytes_in_total')).toBeGreaterThan(0);
    expect(value(text, 'symphonic_messages_out_total')).toBeGreaterThanOrEqual(21);
    expect(value(text, 'symphonic_bytes_out_total')).toBeGreaterThan(21 * 40);
    expect(value(text, 'symphonic_rejections_total', 'code="2002"')).toBe(1);
    expect(value(text, 'symphonic_resumes_total', 'outcome="recovered"')).toBe(1);
    expect(value(text, 'symphonic_session_resumes_total', 'outcome="resumed"')).toBe(1);
    expect(value(text, 'symphonic_publish_seconds_count', 'via="ws"')).toBe(20);
    expect(value(text, 'symphonic_publish_seconds_count', 'via="http"')).toBe(1);
    expect(value(text, 'symphonic_fanout_seconds_count')).toBeGreaterThanOrEqual(21);
    expect(value(text, 'symphonic_connections')).toBe(1);
    expect(value(text, 'symphonic_subscriptions')).toBe(1);
    expect(value(text, 'symphonic_bus_ready')).toBe(1);
    expect(value(text, 'nodejs_eventloop_lag_seconds')).toBeGreaterThanOrEqual(0);
    expect(value(text, 'process_cpu_seconds_total')).toBeGreaterThan(0);
    again.c.close();
  });
});
