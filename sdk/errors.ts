/**
 * Errors the SDK rejects with. Every one carries a numeric `code`: a protocol `ErrorCode` when the
 * server sent it (1xxx-5xxx), or a `ClientErrorCode` (9xxx) when the SDK itself gave up.
 */
import { ErrorCode } from '../protocol/codes.ts';

/** Codes for failures decided on the client side; 9xxx so they never collide with server codes. */
export const ClientErrorCode = {
  Timeout: 9000,
  ConnectionClosed: 9001,
  Validation: 9002,
  Unsubscribed: 9003,
  NoTransport: 9004,
  QueueFull: 9005,
} as const;
export type ClientErrorCode = (typeof ClientErrorCode)[keyof typeof ClientErrorCode];

export class SymphonicError extends Error {
  override name = 'SymphonicError';
  /** A protocol `ErrorCode` (from the server) or a `ClientErrorCode`. */
  readonly code: number;
  /** The topic the error is about, when there is one. */
  readonly topic: string | undefined;
  constructor(code: number, message: string, topic?: string) {
    super(message);
    this.code = code;
    this.topic = topic;
  }
  /** Whether retrying the same request later may succeed (server-side 5xxx, rate limits, timeouts, drops). */
  get retryable(): boolean {
    return (
      (this.code >= 5000 && this.code < 6000) ||
      this.code === ErrorCode.RateLimited ||
      this.code === ClientErrorCode.Timeout ||
      this.code === ClientErrorCode.ConnectionClosed
    );
  }
}

export class TimeoutError extends SymphonicError {
  override name = 'TimeoutError';
  constructor(message: string, topic?: string) {
    super(ClientErrorCode.Timeout, message, topic);
  }
}

/** The connection closed (or was closed) before the request was answered. */
export class ConnectionClosedError extends SymphonicError {
  override name = 'ConnectionClosedError';
  /** The WebSocket close code, when one is known. */
  readonly closeCode: number | undefined;
  constructor(message: string, closeCode?: number) {
    super(ClientErrorCode.ConnectionClosed, message);
    this.closeCode = closeCode;
  }
}

/**
 * A conditional publish (`expect`) found the topic at another sequence: nothing was stored.
 * `current` is the topic's last sequence now (code 2008, SequenceConflict).
 */
export class SequenceConflictError extends SymphonicError {
  override name = 'SequenceConflictError';
  constructor(
    message: string,
    topic: string | undefined,
    readonly current: number,
  ) {
    super(ErrorCode.SequenceConflict, message, topic);
  }
}

/** An RPC's service answered with an error (code 2012): `message` is the service's, `data` what it attached. */
export class ServiceError extends SymphonicError {
  override name = 'ServiceError';
  constructor(
    message: string,
    readonly data: unknown,
  ) {
    super(ErrorCode.ServiceError, message);
  }
}

/** An incoming payload did not pass the subscription's schema. */
export class ValidationError extends SymphonicError {
  override name = 'ValidationError';
  override readonly cause: unknown;
  constructor(message: string, topic: string, cause: unknown) {
    super(ClientErrorCode.Validation, message, topic);
    this.cause = cause;
  }
}
