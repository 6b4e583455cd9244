import type { MessageKind } from '../../../protocol/index.ts';
import { backoff } from './backoff.ts';

export interface PublishRecord {
  readonly topic: string;
  readonly n: number;
  readonly seq: number;
  readonly epoch: string;
  readonly startedAt: number;
  readonly endedAt: number;
  /** Failed attempts before the one that was acknowledged. */
  readonly retries: number;
  /** A failed attempt may have stored the message anyway (503 after the gateway's own retries, connection cut mid-request). */
  readonly ambiguous: boolean;
  readonly via: string;
}

/**
 * `POST /api/publish` with a bearer key. Retries on 503 and on connection failures (moving to
 * the next gateway of its list on a connection failure), with bounded attempts; any other
 * answer is an error.
 */
export class HttpPublisher {
  /** Failed attempts, for the report: [time, gateway, what]. */
  readonly failures: [number, string, string][] = [];

  constructor(
    private readonly key: string,
    readonly httpUrls: string[],
  ) {}

  /**
   * With `idempotencyKey` every attempt carries it (`Idempotency-Key`): a retry of a publish that
   * was stored after all is stored once, so no attempt is ambiguous.
   */
  async publish(
    topic: string,
    kind: MessageKind,
    data: unknown,
    via = 0,
    deadlineMs = 60_000,
    cancelled: () => boolean = () => false,
    idempotencyKey?: string,
  ): Promise<Omit<PublishRecord, 'n' | 'topic'>> {
    const startedAt = Date.now();
    let index = via % this.httpUrls.length;
    let ambiguous = false;
    for (let attempt = 0; ; attempt++) {
      const url = this.httpUrls[index]!;
      let what: string;
      try {
        const res = await fetch(`${url}/api/publish`, {
          method: 'POST',
          headers: {
            authorization: `Bearer ${this.key}`,
            'content-type': 'application/json',
            ...(idempotencyKey ? { 'idempotency-key': idempotencyKey } : {}),
          },
          body: JSON.stringify({ topic, kind, data }),
        });
        const text = await res.text();
        if (res.status === 200) {
          const body = JSON.parse(text) as { seq: number; epoch: string };
          return { seq: body.seq, epoch: body.epoch, startedAt, endedAt: Date.now(), retries: attempt, ambiguous: ambiguous && !idempotencyKey, via: url };
        }
        if (res.status !== 503) throw new Error(`publish to ${topic} via ${url}: HTTP ${res.status} ${text}`);
        ambiguous = true;
        what = `503 ${text}`;
      } catch (e) {
        if ((e as Error).message.startsWith('publish to')) throw e;
        const cause = (e as { cause?: { code?: string } }).cause?.code ?? (e as Error).message;
        // Refused: the request never reached a gateway. Anything else may have been handled.
        if (cause !== 'ECONNREFUSED') ambiguous = true;
        what = cause;
        index = (index + 1) % this.httpUrls.length;
      }
      this.failures.push([Date.now(), url, what]);
      if (Date.now() - startedAt > deadlineMs) throw new Error(`publish to ${topic} failed for ${deadlineMs} ms: ${what}`);
      if (cancelled()) throw new Error(`publish to ${topic} cancelled after: ${what}`);
      await backoff(attempt);
    }
  }
}
