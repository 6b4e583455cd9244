/**
 * The client's requests (publish, history, errors) against the fake server: replies, timeouts, the
 * pre-connection queue, encoding failures.
 */
import { describe, expect, it, vi } from 'vitest';
import { ErrorCode } from '../../protocol/codes.ts';
import { ConnectionClosedError, SymphonicError, TimeoutError } from '../../sdk/index.ts';
import { connected, make, server, useFakeServer } from './helpers/client-harness.ts';

useFakeServer();

describe('requests', () => {
  it('publish resolves with the ack', async () => {
    const { c, s } = connected();
    const p = c.publish('demo.board', { cells: { '1,1': '#fff' } }, { kind: 'patch' });
    const pub = s.lastOf('pub');
    expect(pub).toMatchObject({ topic: 'demo.board', kind: 'patch', data: { cells: { '1,1': '#fff' } } });
    s.deliver({ t: 'ack', id: pub.id, topic: 'demo.board', seq: 7, epoch: 'e1' });
    await expect(p).resolves.toEqual({ seq: 7, epoch: 'e1' });
  });

  it('publish rejects with a SymphonicError carrying the server code', async () => {
    const { c, s } = connected();
    const p = c.publish('secret.x', 1);
    s.deliver({ t: 'error', id: s.lastOf('pub').id, code: ErrorCode.PublishNotAllowed, message: 'no', topic: 'secret.x' });
    const err = await p.catch((e) => e);
    expect(err).toBeInstanceOf(SymphonicError);
    expect(err).toMatchObject({ code: ErrorCode.PublishNotAllowed, topic: 'secret.x', name: 'SymphonicError' });
  });

  it('publish times out with TimeoutError', async () => {
    const { c } = connected({ timeout: 1000 });
    const p = c.publish('a.b', 1);
    const caught = p.catch((e) => e);
    await vi.advanceTimersByTimeAsync(1000);
    expect(await caught).toBeInstanceOf(TimeoutError);
  });

  it('a bad topic is refused locally', async () => {
    const { c, s } = connected();
    await expect(c.publish('bad topic', 1)).rejects.toMatchObject({ code: ErrorCode.BadTopic });
    expect(() => c.subscribe('a..b')).toThrow(SymphonicError);
    expect(s.framesOf('pub')).toEqual([]);
  });

  it('publish while connecting is queued and sent after welcome; a drop rejects in-flight ones', async () => {
    const c = make({ reconnect: { min: 10, max: 10 } });
    c.connect();
    const p1 = c.publish('a.b', 1);
    server.accept();
    const s = server.last;
    expect(s.framesOf('pub')).toHaveLength(1);
    s.serverClose(1006);
    const err = await p1.catch((e) => e);
    expect(err).toBeInstanceOf(ConnectionClosedError);
    expect(err.closeCode).toBe(1006);
  });

  it('publish before connect() is refused', async () => {
    const c = make();
    await expect(c.publish('a.b', 1)).rejects.toBeInstanceOf(ConnectionClosedError);
  });

  it('history', async () => {
    const { c, s } = connected();
    const p = c.history('chat.x', { since: 3, limit: 2 });
    const h = s.lastOf('history');
    expect(h).toMatchObject({ topic: 'chat.x', since: 3, limit: 2 });
    s.deliver({
      t: 'history',
      id: h.id,
      topic: 'chat.x',
      epoch: 'e',
      seq: 9,
      complete: true,
      messages: [{ seq: 4, prev: 3, kind: 'event', data: 'a', ts: 1 }],
    });
    await expect(p).resolves.toEqual({
      topic: 'chat.x',
      epoch: 'e',
      seq: 9,
      complete: true,
      messages: [{ topic: 'chat.x', seq: 4, prev: 3, kind: 'event', data: 'a', ts: 1 }],
    });
  });

  it('server errors without an id are emitted as client errors', () => {
    const { c, s } = connected();
    const errors: SymphonicError[] = [];
    c.on('error', (e) => errors.push(e));
    s.deliver({ t: 'error', code: ErrorCode.RateLimited, message: 'slow down' });
    expect(errors[0]).toMatchObject({ code: ErrorCode.RateLimited, retryable: true });
  });

  it('an undecodable frame is reported, not thrown', () => {
    const { c, s } = connected();
    const errors: SymphonicError[] = [];
    c.on('error', (e) => errors.push(e));
    s.onmessage?.({ data: new Uint8Array([0xc1]).buffer });
    expect(errors[0]?.code).toBe(ErrorCode.BadFrame);
    expect(c.state).toBe('connected');
  });
});

describe('encoding failures', () => {
  it('a payload the codec cannot encode rejects at once (msgpack: a function; json: a bigint)', async () => {
    const { c } = connected();
    await expect(c.publish('a.b', { f: () => 1 })).rejects.toMatchObject({ code: ErrorCode.InvalidFrame });
    c.close();
    const j = connected({ encoding: 'json' });
    await expect(j.c.publish('a.b', { n: 1n })).rejects.toMatchObject({ code: ErrorCode.InvalidFrame });
    expect(j.c.state).toBe('connected');
  });
});
