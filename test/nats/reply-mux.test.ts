/**
 * The reply mux under JsWriter and JsReader (nats-kit/reply-mux.ts), on a real nats-server: at
 * most `maxInFlight` requests are unanswered at a time, the rest wait their turn and their timeout
 * starts when they are sent (a burst is not timed out by its own queue), every request gets its
 * own answer, in the order asked, and closing rejects what is sent and what waits.
 */
import { connect, type Msg, type NatsConnection } from 'nats';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ReplyMux } from '../../nats-kit/reply-mux.ts';
import { startNatsServer, type NatsServer } from '../support/nats-server.ts';

let server: NatsServer;
let nc: NatsConnection;
let responder: NatsConnection;

beforeAll(async () => {
  server = await startNatsServer();
  nc = await connect({ servers: server.url });
  responder = await connect({ servers: server.url });
}, 30_000);
afterAll(async () => {
  await nc?.close();
  await responder?.close();
  await server?.cleanup();
});

const text = (m: Msg) => new TextDecoder().decode(m.data);
const bytes = (s: string) => new TextEncoder().encode(s);

describe('ReplyMux', () => {
  it('keeps at most maxInFlight requests unanswered; the others wait, and their timeout starts when sent', async () => {
    // Answers each request 100 ms after it arrives, counting how many it holds at once.
    let holding = 0;
    let most = 0;
    const arrived: string[] = [];
    const sub = responder.subscribe('mux.slow', {
      callback: (_e, m) => {
        arrived.push(text(m));
        most = Math.max(most, ++holding);
        setTimeout(() => {
          holding--;
          m.respond(bytes(`re:${text(m)}`));
        }, 100);
      },
    });
    await responder.flush();
    const mux = new ReplyMux(nc, 2);
    try {
      // 8 requests, 2 at a time, 100 ms each: the last is answered ~400 ms after the burst, past
      // the 250 ms timeout each has, which counts from its own sending.
      const answers = Promise.all(Array.from({ length: 8 }, (_, i) => mux.request('mux.slow', bytes(String(i)), 250, text)));
      expect(mux.inFlight).toBe(8);
      expect(await answers).toEqual(Array.from({ length: 8 }, (_, i) => `re:${i}`));
      expect(most).toBe(2);
      // Sent in the order asked (a stream stores a connection's publishes in arrival order).
      expect(arrived).toEqual(Array.from({ length: 8 }, (_, i) => String(i)));
      expect(mux.inFlight).toBe(0);
    } finally {
      sub.unsubscribe();
      mux.close();
    }
  });

  it('a timed-out request frees its slot for the next', async () => {
    const silent = responder.subscribe('mux.silent', { callback: () => {} });
    const echo = responder.subscribe('mux.echo', { callback: (_e, m) => m.respond(m.data) });
    await responder.flush();
    const mux = new ReplyMux(nc, 1);
    try {
      const lost = mux.request('mux.silent', bytes('x'), 100, text).catch((e: unknown) => e);
      const next = mux.request('mux.echo', bytes('after'), 2_000, text);
      expect(await lost).toMatchObject({ code: 'TIMEOUT' });
      expect(await next).toBe('after');
    } finally {
      silent.unsubscribe();
      echo.unsubscribe();
      mux.close();
    }
  });

  it('closing rejects the requests sent and those still waiting', async () => {
    const silent = responder.subscribe('mux.never', { callback: () => {} });
    await responder.flush();
    const mux = new ReplyMux(nc, 1);
    const sent = mux.request('mux.never', bytes('a'), 60_000, text);
    const waiting = mux.request('mux.never', bytes('b'), 60_000, text);
    mux.close();
    await expect(sent).rejects.toMatchObject({ code: 'CONNECTION_CLOSED' });
    await expect(waiting).rejects.toMatchObject({ code: 'CONNECTION_CLOSED' });
    expect(mux.inFlight).toBe(0);
    silent.unsubscribe();
  });
});
