/**
 * JetStream writes (stream publishes, KV puts) at a fraction of nats.js's cost: `js.publish` makes
 * each write a request with its own timer, deferred promise, reply entry and async wrapper, and
 * V8 promotes 2-3 KB of that per write to its old generation although the ack comes in a
 * millisecond (measured with loadtest/bench/promotion.ts: 2.9 KB per KV update through nats.js,
 * 0.1 KB this way). An idle NATS gateway rewrites every session's record every TTL/2, so that
 * garbage was most of its memory per connection above the embedded engine's.
 *
 * A JsWriter publishes with a reply subject under one wildcard subscription of its own and one
 * timeout tick for all writes (reply-mux.ts). Acks and errors read like nats.js's (`PubAck`; errors with `code` and
 * `api_error`), so callers keep their rules (nats-kit/errors.ts).
 */
import type { Msg, MsgHdrs, NatsConnection, PubAck } from 'nats';
import { apiError, JsApiError, jsonReply, ReplyMux, type ApiErrorBody } from './reply-mux.ts';

/** Without a timeout a write waits this long (nats.js's JetStream default). */
const DEFAULT_TIMEOUT_MS = 5_000;

export interface JsWriteOptions {
  /** Nats-Msg-Id: the stream's duplicate window stores one message per id. */
  msgID?: string;
  /** Attempt timeout in ms; the write rejects with code `TIMEOUT` after it (it may still land). */
  timeout?: number;
  headers?: MsgHdrs;
  /** Conditional write: stored only if the subject's last sequence is still this (0: no message). */
  expect?: { lastSubjectSequence?: number };
}

/** What publishRetried needs of a JetStream client: nats.js's `JetStreamClient` or a JsWriter. */
export interface JsPublisher {
  publish(subject: string, data: Uint8Array, options?: JsWriteOptions): Promise<PubAck>;
}

const encoder = new TextEncoder();

/**
 * The headers of a write: the caller's MsgHdrs with ours set on it, or, when the caller has none
 * (nearly every write), ours as bytes. nats.js's `headers()` builds a map of arrays and
 * canonicalises every key, and V8 promoted part of that on every write (170 of the 270 bytes per
 * KV update that still reached the old generation); nats.js's publish asks nothing of a MsgHdrs
 * but `encode()`, which test/nats/js-writer.test.ts pins (the ids and expectations must arrive).
 */
function withHeaders(o: JsWriteOptions | undefined): MsgHdrs | undefined {
  const msgID = o?.msgID;
  const expect = o?.expect?.lastSubjectSequence;
  const h = o?.headers;
  if (h) {
    if (msgID !== undefined) h.set('Nats-Msg-Id', msgID);
    if (expect !== undefined) h.set('Nats-Expected-Last-Subject-Sequence', String(expect));
    return h;
  }
  if (msgID === undefined && expect === undefined) return undefined;
  let text = 'NATS/1.0\r\n';
  if (msgID !== undefined) {
    if (/[\r\n]/.test(msgID)) throw new JsApiError('invalid header value - \\r and \\n are not allowed.', 'BAD_HEADER');
    text += `Nats-Msg-Id: ${msgID}\r\n`;
  }
  if (expect !== undefined) text += `Nats-Expected-Last-Subject-Sequence: ${expect}\r\n`;
  const bytes = encoder.encode(`${text}\r\n`);
  return { encode: () => bytes } as unknown as MsgHdrs;
}

export class JsWriter implements JsPublisher {
  private readonly mux: ReplyMux;

  constructor(nc: NatsConnection) {
    this.mux = new ReplyMux(nc);
  }

  publish(subject: string, data: Uint8Array, options?: JsWriteOptions): Promise<PubAck> {
    let h: MsgHdrs | undefined;
    try {
      h = withHeaders(options);
    } catch (e) {
      return Promise.reject(e as Error);
    }
    return this.mux.request(subject, data, options?.timeout ?? DEFAULT_TIMEOUT_MS, parseAck, h);
  }

  /**
   * Removes one stored message by its stream sequence (STREAM.MSG.DELETE, no erase). Resolves
   * false when there is no such message (never stored, or replaced since: a KV key keeps only
   * its last). Rejects like publish.
   */
  deleteMsg(stream: string, seq: number, timeoutMs: number): Promise<boolean> {
    return this.mux.request(`$JS.API.STREAM.MSG.DELETE.${stream}`, encoder.encode(`{"seq":${seq},"no_erase":true}`), timeoutMs, parseDeleted);
  }

  /** Writes waiting for their ack. */
  get inFlight(): number {
    return this.mux.inFlight;
  }

  /** Rejects every pending write and stops answering (the connection closed, or the owner is done). */
  close(): void {
    this.mux.close();
  }
}

/** JetStream's answers to deleting a message that is not there: "no message found" (10057: before the stream's first or past its last), "sequence N not found" (10043: in between). */
const NO_MESSAGE_TO_DELETE = [10057, 10043];

/** A message delete's answer: true if removed, false if there was none; any other error thrown. */
function parseDeleted(m: Msg): boolean {
  const reply = jsonReply<{ error?: ApiErrorBody; success?: boolean }>(m, 'delete reply', 'JetStreamInvalidReply');
  if (reply.error) {
    if (NO_MESSAGE_TO_DELETE.includes(reply.error.err_code ?? 0)) return false;
    throw apiError(reply.error);
  }
  return reply.success === true;
}

/** A publish's answer: the ack, or JetStream's error as nats.js would throw it. */
function parseAck(m: Msg): PubAck {
  const reply = jsonReply<{ error?: ApiErrorBody; stream?: string; seq?: number; duplicate?: boolean; domain?: string }>(m, 'ack', 'JetStreamInvalidAck');
  const e = reply.error;
  if (e && e.code >= 300) throw apiError(e);
  if (!reply.stream || typeof reply.seq !== 'number') throw new JsApiError('JetStream answered with no valid ack', 'JetStreamInvalidAck');
  return { stream: reply.stream, seq: reply.seq, duplicate: reply.duplicate === true, domain: reply.domain ?? '' };
}
