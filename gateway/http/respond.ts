/** Small helpers for uWS HTTP responses: JSON replies, coded errors, bounded body reads. */
import type { HttpResponse } from 'uWebSockets.js';
import type { ErrorCode } from '../../protocol/index.ts';

/** A response that may be answered later: tracks client aborts (uWS forbids touching it after). */
export interface PendingResponse {
  readonly res: HttpResponse;
  aborted: boolean;
}

export function pending(res: HttpResponse): PendingResponse {
  const p = { res, aborted: false };
  res.onAborted(() => {
    p.aborted = true;
  });
  return p;
}

export function replyJson(p: PendingResponse, status: string, body: unknown, headers: Record<string, string> = {}): void {
  if (p.aborted) return;
  p.aborted = true; // answered: no second reply
  p.res.cork(() => {
    p.res.writeStatus(status).writeHeader('content-type', 'application/json');
    for (const [k, v] of Object.entries(headers)) p.res.writeHeader(k, v);
    p.res.end(JSON.stringify(body));
  });
}

export function replyError(p: PendingResponse, status: string, code: ErrorCode, message: string): void {
  replyJson(p, status, { error: { code, message } });
}

/** Collects the request body up to `max` bytes; `onDone(null)` when it is larger. */
export function readBody(p: PendingResponse, max: number, onDone: (body: Buffer | null) => void): void {
  const chunks: Buffer[] = [];
  let size = 0;
  let over = false;
  p.res.onData((chunk, isLast) => {
    if (over) return;
    size += chunk.byteLength;
    if (size > max) {
      over = true;
      return onDone(null);
    }
    chunks.push(Buffer.from(chunk.slice(0))); // uWS reuses the chunk's memory after this call
    if (isLast) onDone(Buffer.concat(chunks));
  });
}
