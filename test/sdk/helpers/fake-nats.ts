/**
 * Just enough of a NatsConnection for unit tests of the NATS publish transport: the test decides
 * what each JetStream publish answers, reads the stream's `created` time, and plays connection
 * status changes (disconnect / reconnect).
 */
import type { NatsConnection, PubAck } from 'nats';

export interface Published {
  subject: string;
  data: Uint8Array;
  msgID: string | undefined;
  timeout: number | undefined;
}

export type Answer = PubAck | { error: { code?: string; message?: string; api_error?: { code: number; err_code: number } } };

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

  /** Plays a status event (e.g. 'disconnect', 'reconnect'). */
  status(type: string): void {
    this.statusQueue.push({ type, data: '' });
    this.statusWaiter?.();
  }

  readonly connection: NatsConnection = ((fake: FakeNats) =>
    ({
      jetstream: () => ({
        publish: async (subject: string, data: Uint8Array, opts: { msgID?: string; timeout?: number } = {}) => {
          fake.published.push({ subject, data, msgID: opts.msgID, timeout: opts.timeout });
          const a = fake.answers.shift();
          if (a && 'error' in a) throw Object.assign(new Error(a.error.message ?? a.error.code ?? 'error'), a.error);
          return a ?? { stream: fake.stream, seq: ++fake.seq, duplicate: false, domain: '' };
        },
      }),
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
      subscribe: (subject: string) => {
        fake.subscriptions.push(subject);
        return { unsubscribe() {} };
      },
    }) as unknown as NatsConnection)(this);
}
