/**
 * Requests to a JetStream that may not answer yet. nats-server 2.9 leaves requests to a stream
 * (or KV bucket) whose raft group has no leader yet unanswered for its first seconds (503 only
 * later): a new stream's first election, or any election. The client would wait its whole 5 s
 * JetStream timeout for each; these helpers ask with short, growing timeouts instead.
 */
import { backoffDelay, pause } from '../../../nats-kit/backoff.ts';
import { isRetryable } from '../../../nats-kit/errors.ts';
import type { MsgQuery, MsgReads, StoredMsg } from '../../../nats-kit/js-reader.ts';

const PROBE_FIRST_MS = 250;
const PROBE_MAX_MS = 2_000;

/** The error of a request abandoned by `withTimeout` (same code as the client's own timeout: retryable). */
export class RequestTimeout extends Error {
  readonly code = 'TIMEOUT';
  constructor(what: string, ms: number) {
    super(`${what}: no answer within ${ms} ms`);
  }
}

/**
 * `request` or a RequestTimeout after `ms`, whichever comes first. The request itself is not
 * cancelled (the client has no way to): its late outcome is ignored, so callers must tolerate a
 * write that was applied although they saw a timeout.
 */
export function withTimeout<T>(request: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new RequestTimeout(what, ms)), ms);
    timer.unref();
  });
  return Promise.race([request, timeout]).finally(() => clearTimeout(timer));
}

export function isTimeout(e: unknown): boolean {
  return e instanceof RequestTimeout || (e as { code?: unknown })?.code === 'TIMEOUT';
}

/** The attempt timeout of the n-th try of a request: short first, growing to PROBE_MAX_MS. */
const attemptMs = (attempt: number, first = PROBE_FIRST_MS) => Math.min(first * 2 ** Math.min(attempt, 10), PROBE_MAX_MS);
/** First attempt of a request that does work (not a probe): a busy server may take a while to answer. */
const ASK_FIRST_MS = 500;

/**
 * `request()` until it is answered or `deadline` passes: each attempt gets a short, growing
 * timeout (a request to a stream whose leader is being elected goes unanswered, and asking again
 * after the election is answered at once), transient refusals (no responders, 503, disconnect)
 * are retried with backoff, anything else is thrown at once. Only for requests that are safe to
 * repeat (reads; writes whose repetition the caller detects, e.g. compare-and-set).
 */
export function askUntil<T>(what: string, deadline: number, request: () => Promise<T>, closed: () => boolean = () => false): Promise<T> {
  return askTimedUntil(deadline, (ms) => withTimeout(request(), ms, what), closed);
}

/**
 * askUntil for a request that times out by itself (rejecting with code `TIMEOUT`), e.g. a
 * JsWriter's: each attempt is given its timeout, so no timer and race of our own per attempt.
 */
export async function askTimedUntil<T>(deadline: number, request: (timeoutMs: number) => Promise<T>, closed: () => boolean = () => false): Promise<T> {
  for (let attempt = 0; ; attempt++) {
    const left = deadline - Date.now();
    try {
      return await request(Math.max(1, Math.min(left, attemptMs(attempt, ASK_FIRST_MS))));
    } catch (e) {
      if (!isTimeout(e) && !isRetryable(e)) throw e;
      if (closed() || Date.now() >= deadline) throw e;
      if (!isTimeout(e)) await pause(Math.min(deadline - Date.now(), Math.max(20, backoffDelay(attempt, 50, 500))));
    }
  }
}

/** A stored message (STREAM.MSG.GET through a JsReader), asked again until answered or `deadline`; undefined when there is none. */
export function readUntil(reads: MsgReads, stream: string, query: MsgQuery, deadline: number, closed?: () => boolean): Promise<StoredMsg | undefined> {
  return askTimedUntil(deadline, (timeout) => reads.get(stream, query, timeout), closed);
}

/**
 * Resolves true once `ask()` is answered (any answer but a refusal to retry), false when it has
 * not been within `maxWaitMs` or was refused for a reason waiting will not fix. Each try waits a
 * short, growing time, so an answer is seen soon after a new stream's leader is elected.
 */
export async function whenAnswering(ask: () => Promise<unknown>, maxWaitMs: number, what = 'request'): Promise<boolean> {
  const deadline = Date.now() + maxWaitMs;
  for (let attempt = 0; ; attempt++) {
    const left = deadline - Date.now();
    if (left <= 0) return false;
    try {
      await withTimeout(ask(), Math.min(left, attemptMs(attempt)), what);
      return true;
    } catch (e) {
      if (isTimeout(e)) continue; // nothing answered: ask again at once, a little more patiently
      if (!isRetryable(e)) return false; // e.g. no permission: the caller's own requests will say so
      await pause(Math.max(20, backoffDelay(attempt, 50, 500))); // an answer (no leader yet): pace the retries
    }
  }
}
