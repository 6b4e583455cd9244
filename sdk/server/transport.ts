/**
 * How a backend's publish travels: the `PublishTransport` seam, the error that says "this way is
 * not reachable, nothing was sent", and `FallbackTransport`, which tries transports in order and
 * moves to the next one only on that error.
 */
import { ErrorCode } from '../../protocol/codes.ts';
import type { MessageKind } from '../../protocol/frames.ts';
import { SymphonicError } from '../errors.ts';
import type { PublishAck } from '../types.ts';

export interface PublishRequest {
  topic: string;
  kind: MessageKind;
  data: unknown;
  /** Conditional publish: stored only if the topic's last sequence is still this (0: none yet). */
  expect?: number;
}

/** How a publish reaches the bus. Implement this to publish another way. */
export interface PublishTransport {
  /**
   * Resolves with where the message landed. Rejects with a SymphonicError; with a
   * `TransportUnavailableError` only when the message certainly did not leave (so another
   * transport may safely send it).
   */
  publish(req: PublishRequest): Promise<PublishAck>;
  close?(): Promise<void>;
}

/**
 * The transport cannot reach its server (connection refused, not connected, connecting failed):
 * the message was not sent. Code 5001 (Unavailable), retryable. `FallbackTransport` moves on to
 * its next transport on this error, and only on this one.
 */
export class TransportUnavailableError extends SymphonicError {
  override name = 'TransportUnavailableError';
  override readonly cause: unknown;
  constructor(message: string, topic?: string, cause?: unknown) {
    super(ErrorCode.Unavailable, message, topic);
    this.cause = cause;
  }
}

export interface FallbackOptions {
  /** Called each time a publish moves from one transport to the next (e.g. to log it). */
  onFallback?: (info: { error: TransportUnavailableError; from: number; to: number; topic: string }) => void;
}

/**
 * Tries each transport in order (e.g. `[nats, http]`) and moves to the next only when the current
 * one is unreachable (`TransportUnavailableError`: the message was not sent). Any other failure
 * (a refused publish, a timeout after the message left, which may or may not have been stored)
 * is thrown as is: sending it again another way could store it twice.
 */
export class FallbackTransport implements PublishTransport {
  private readonly transports: readonly PublishTransport[];
  constructor(
    transports: readonly PublishTransport[],
    private readonly opts: FallbackOptions = {},
  ) {
    if (transports.length === 0) throw new TypeError('FallbackTransport needs at least one transport');
    this.transports = [...transports];
  }

  async publish(req: PublishRequest): Promise<PublishAck> {
    for (let i = 0; ; i++) {
      try {
        return await this.transports[i]!.publish(req);
      } catch (e) {
        if (!(e instanceof TransportUnavailableError) || i === this.transports.length - 1) throw e;
        this.opts.onFallback?.({ error: e, from: i, to: i + 1, topic: req.topic });
      }
    }
  }

  async close(): Promise<void> {
    await Promise.all(this.transports.map((t) => t.close?.()));
  }
}
