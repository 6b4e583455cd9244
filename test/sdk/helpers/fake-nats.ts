/**
 * Just enough of a NatsConnection for unit tests of the NATS publish transport: the test decides
 * what each JetStream publish answers, reads the stream's `created` time, and plays connection
 * status changes (disconnect / reconnect). JetStream publishes arrive as core publishes with a
 * reply subject (nats-kit/js-writer.ts); the answer goes to the subscription that reply falls
 * under, as nats-server would send it: a PubAck or a JetStream error as JSON, no responders as a
 * 503 status message, a timeout as no answer at all.
 */
import type { Msg, MsgHdrs, NatsConnection, PubAck } from 'nats';

export interface Published {
  subject: string;
  data: Uint8Array;
  msgID: string | undefined;
}

export type Answer = PubAck | { error: { code?: string; message?: string; api_error?: { code: number; err_code: number } } };

type Callback = (err: null, msg: Msg) => void;

export class FakeNats {
  readonly published: Published[] = [];
  created = '2026-01-02T03:04:05.123456789Z';
  infoCalls = 0;
  /** What the next publishes answer, in order; when empty, an ack with the next sequence. */
  readonly answers: Answer[] = [];
  seq = 0;
  stream = 'symphonic_topics';
  private closedFlag = false;
  private closedResolve!: () => void;
  private readonly closedPromise = new Promise<void>((r) => (this.closedResolve = r));
  private statusQueue: { type: string; data: string }[] = [];
  private statusWaiter: (() => void) | undefined;
  readonly subscriptions: string[] = [];
  private readonly callbacks: { subject: string; callback: Callback }[] = [];

  /** Sends the answer to a publish with `reply`, as nats-server would. */
  private answer(reply: string, a: Answer | undefined): void {
    const sub = this.callbacks.find((c) => (c.subject.endsWith('.*') ? reply.startsWith(c.subject.slice(0, -1)) : reply === c.subject));
    if (!sub) return;
    const msg = (data: unknown, code?: number) =>
      ({
        subject: reply,
        data: new TextEncoder().encode(data === undefined ? '' : JSON.stringify(data)),
        headers: code ? { code } : undefined,
      }) as unknown as Msg;
    let m: Msg;
    if (a && 'error' in a) {
      if (a.error.code === 'TIMEOUT') return;
      if (a.error.code === '503') m = msg(undefined, 503);
      else m = msg({ error: { code: a.error.api_error?.code ?? 500, err_code: a.error.api_error?.err_code, description: a.error.message ?? '' } });
    } else m = msg(a ?? { stream: this.stream, seq: ++this.seq, duplicate: false, domain: '' });
    queueMicrotask(() => sub.callback(null, m));
  }

  /** Plays a status event (e.g. 'disconnect', 'reconnect'). */
  status(type: string): void {
    this.statusQueue.push({ type, data: '' });
    this.statusWaiter?.();
  }

  readonly connection: NatsConnection = ((fake: FakeNats) =>
    ({
      publish: (subject: string, data: Uint8Array, opts: { reply?: string; headers?: MsgHdrs & { encode(): Uint8Array } } = {}) => {
        if (fake.closedFlag) throw Object.assign(new Error('closed'), { code: 'CONNECTION_CLOSED' });
        // The headers as they go on the wire (all nats.js's publish asks of them is encode()).
        const wire = opts.headers ? new TextDecoder().decode(opts.headers.encode()) : '';
        fake.published.push({ subject, data, msgID: /\r\nNats-Msg-Id: ([^\r]*)\r\n/.exec(wire)?.[1] });
        const a = fake.answers.shift();
        // Errors the client itself raises (not JetStream's answers) are thrown by publish.
        if (a && 'error' in a && a.error.code !== undefined && !['TIMEOUT', '503'].includes(a.error.code) && !a.error.api_error)
          throw Object.assign(new Error(a.error.message ?? a.error.code), a.error);
        if (opts.reply) fake.answer(opts.reply, a);
      },
      jetstreamManager: async () => ({
        streams: {
          info: async () => {
            fake.infoCalls++;
            return { created: fake.created };
          },
        },
      }),
      status: () => ({
        [Symbol.asyncIterator]: () => ({
          next: async () => {
            while (!fake.statusQueue.length && !fake.closedFlag) await new Promise<void>((r) => (fake.statusWaiter = r));
            if (fake.closedFlag) return { done: true, value: undefined };
            return { done: false, value: fake.statusQueue.shift()! };
          },
        }),
      }),
      closed: () => fake.closedPromise,
      isClosed: () => fake.closedFlag,
      close: async () => {
        fake.closedFlag = true;
        fake.statusWaiter?.();
        fake.closedResolve();
      },
      subscribe: (subject: string, opts: { callback?: Callback } = {}) => {
        fake.subscriptions.push(subject);
        if (opts.callback) fake.callbacks.push({ subject, callback: opts.callback });
        return { unsubscribe() {} };
      },
    }) as unknown as NatsConnection)(this);
}
