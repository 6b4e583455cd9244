/** The `hello` frame (sdk/hello.ts), a pure function of the token, the session and the subscriptions' positions. */
import { describe, expect, it } from 'vitest';
import { decodeClientFrame } from '../../protocol/validate.ts';
import { MAX_RESTORE_TOPICS } from '../../protocol/version.ts';
import { helloFrame, MAX_RESTORE_BYTES, type HelloInput } from '../../sdk/hello.ts';

const SESSION = { id: 'sess-1', key: 'key-1' };
const at = (seq: number) => ({ seq, epoch: 'e1' });
const input = (over: Partial<HelloInput> = {}): HelloInput => ({
  token: undefined,
  session: undefined,
  subscriptions: [],
  restore: true,
  name: undefined,
  ...over,
});

describe('helloFrame', () => {
  it('a first hello: version, then the token and the client name when given', () => {
    expect(helloFrame(input())).toEqual({ frame: { t: 'hello', v: 1 }, restore: false });
    expect(helloFrame(input({ token: 'tok', name: 'app' })).frame).toEqual({ t: 'hello', v: 1, token: 'tok', client: 'app' });
    expect(helloFrame(input({ name: '' })).frame).toEqual({ t: 'hello', v: 1 });
  });

  it('no session: nothing to restore, whatever the subscriptions', () => {
    expect(helloFrame(input({ subscriptions: [{ topic: 't.x', position: at(5) }] }))).toEqual({ frame: { t: 'hello', v: 1 }, restore: false });
  });

  it('the last direct message handled goes as hello.inbox, only with a session to resume', () => {
    expect(helloFrame(input({ session: SESSION, inbox: at(7) })).frame).toEqual({ t: 'hello', v: 1, session: SESSION, inbox: at(7) });
    expect(helloFrame(input({ inbox: at(7) })).frame).toEqual({ t: 'hello', v: 1 });
    expect(decodeClientFrame('json', JSON.stringify(helloFrame(input({ session: SESSION, inbox: at(7) })).frame)).ok).toBe(true);
  });

  it('a session without subscriptions is presented alone', () => {
    expect(helloFrame(input({ session: SESSION }))).toEqual({ frame: { t: 'hello', v: 1, session: SESSION }, restore: false });
  });

  it('a session with subscriptions asks for a restore from their positions (those without one come back fresh)', () => {
    const hello = helloFrame(
      input({
        session: SESSION,
        subscriptions: [
          { topic: 't.x', position: at(5) },
          { topic: 't.new', position: undefined },
        ],
      }),
    );
    expect(hello).toEqual({ frame: { t: 'hello', v: 1, session: SESSION, restore: { since: { 't.x': at(5) } } }, restore: true });
    expect(decodeClientFrame('json', JSON.stringify(hello.frame)).ok).toBe(true);
    expect(helloFrame(input({ session: SESSION, subscriptions: [{ topic: 't.new', position: undefined }] })).frame.restore).toEqual({ since: {} });
  });

  it('restore: false never asks', () => {
    expect(helloFrame(input({ session: SESSION, restore: false, subscriptions: [{ topic: 't.x', position: at(5) }] }))).toEqual({
      frame: { t: 'hello', v: 1, session: SESSION },
      restore: false,
    });
  });

  it('too many positions for one hello (bytes or topics): no restore, the subscriptions resubscribe themselves', () => {
    const long = 'x'.repeat(200);
    const heavy = Array.from({ length: Math.ceil(MAX_RESTORE_BYTES / 200) }, (_, i) => ({ topic: `t.${i}.${long}`, position: at(i) }));
    expect(helloFrame(input({ session: SESSION, subscriptions: heavy }))).toEqual({ frame: { t: 'hello', v: 1, session: SESSION }, restore: false });
    const many = Array.from({ length: MAX_RESTORE_TOPICS + 1 }, (_, i) => ({ topic: `t${i}`, position: { seq: i, epoch: '' } }));
    expect(helloFrame(input({ session: SESSION, subscriptions: many })).restore).toBe(false);
    expect(helloFrame(input({ session: SESSION, subscriptions: many.slice(0, 400) })).restore).toBe(true); // 400 × ~36 bytes
  });
});
