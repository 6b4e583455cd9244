/** The gateway's logs (gateway/log.ts on pino): JSON lines, secrets and payloads redacted, a pretty mode. */
import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { createLogger, prettyStream } from '../../gateway/log.ts';

function capture(): { lines: string[]; stream: Writable } {
  const lines: string[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _e, done) {
      lines.push(...chunk.toString().split('\n').filter(Boolean));
      done();
    },
  });
  return { lines, stream };
}

describe('logs', () => {
  it('one JSON line per event: level as a word, ISO time, the node and the fields; below the level nothing', () => {
    const { lines, stream } = capture();
    const log = createLogger('info', { node: 'gw-1' }, { destination: stream });
    log.debug('hidden');
    log.warn('subscribe failed', { topic: 'chat.1', session: 's_1' });
    expect(lines).toHaveLength(1);
    const l = JSON.parse(lines[0]!);
    expect(l).toMatchObject({ level: 'warn', msg: 'subscribe failed', node: 'gw-1', topic: 'chat.1', session: 's_1' });
    expect(new Date(l.time).toISOString()).toBe(l.time);
  });

  it('never writes tokens, keys or payloads, even when a call site passes them', () => {
    const { lines, stream } = capture();
    const log = createLogger('debug', {}, { destination: stream });
    log.info('oops', { token: 'eyJhbGciOi.secret.sig', authorization: 'Bearer k', data: { card: '4111' }, nested: { apiKey: 'k', password: 'p' }, topic: 't' });
    expect(lines[0]).not.toMatch(/eyJhbGciOi|Bearer k|4111|"k"|"p"/);
    expect(JSON.parse(lines[0]!)).toMatchObject({
      token: '[redacted]',
      data: '[redacted]',
      nested: { apiKey: '[redacted]', password: '[redacted]' },
      topic: 't',
    });
  });

  it('lets payloads through only when asked (debugging)', () => {
    const { lines, stream } = capture();
    createLogger('info', {}, { destination: stream, payloads: true }).info('m', { data: { n: 1 }, token: 'x' });
    expect(JSON.parse(lines[0]!)).toMatchObject({ data: { n: 1 }, token: '[redacted]' });
  });

  it('pretty mode: time, level and message, then the fields, on one line', () => {
    const { lines, stream } = capture();
    createLogger('info', { node: 'gw-1' }, { destination: prettyStream(stream) }).error('bus down', { engine: 'nats' });
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/^\d\d:\d\d:\d\d\.\d{3} ERROR bus down {2}node=gw-1 engine=nats$/);
  });
});
