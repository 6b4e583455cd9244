/**
 * JetStream point reads (STREAM.MSG.GET: by sequence, `last_by_subj`, `next_by_subj`) over a
 * ReplyMux, instead of `jsm.streams.getMessage` / `kv.get`. A missing message is `undefined`, not
 * an error: nats.js throws one (with a stack trace) for every 404, and a resume reads an empty inbox
 * and the end of a topic, both 404s, for every session. The message's time and headers are kept
 * as the server sent them (decoded only by callers that need them).
 *
 * Only the JetStream API under `$JS.API` (no domain, no API prefix), as the gateway's NATS engine uses it.
 */
import type { Msg, NatsConnection } from 'nats';
import { apiError, JsApiError, jsonReply, ReplyMux, type ApiErrorBody } from './reply-mux.ts';

/** Which message: the stream sequence, the subject's last, or the subject's first at or after `seq`. */
export type MsgQuery = { seq: number } | { last_by_subj: string } | { seq: number; next_by_subj: string };

export interface StoredMsg {
  readonly subject: string;
  readonly seq: number;
  readonly data: Uint8Array;
  /** When the stream stored it, as the server wrote it (RFC 3339 with nanoseconds). */
  readonly time: string;
  /** Its headers as NATS wire text (`NATS/1.0\r\nName: value\r\n...`), if it has any. */
  readonly headers: string | undefined;
}

interface MsgGetReply {
  error?: ApiErrorBody;
  message?: { subject: string; seq: number; data?: string; hdrs?: string; time: string };
}

const encoder = new TextEncoder();
const EMPTY = new Uint8Array(0);
/** JetStream's "no message found" (10037); 404 with another code (stream not found, 10059) is an error. */
const NO_MESSAGE = 10037;

/** A header's value in NATS wire header text, if present (names compared case-insensitively). */
export function headerValue(headers: string | undefined, name: string): string | undefined {
  if (!headers) return undefined;
  const lower = name.toLowerCase();
  for (const line of headers.split('\r\n')) {
    const colon = line.indexOf(':');
    if (colon > 0 && line.slice(0, colon).trim().toLowerCase() === lower) return line.slice(colon + 1).trim();
  }
  return undefined;
}

function parseMsgGet(msg: Msg): StoredMsg | undefined {
  const reply = jsonReply<MsgGetReply>(msg, 'message read reply', 'JetStreamInvalidReply');
  if (reply.error) {
    if (reply.error.err_code === NO_MESSAGE) return undefined;
    throw apiError(reply.error);
  }
  const m = reply.message;
  if (!m || typeof m.seq !== 'number') throw new JsApiError('JetStream answered a message read with no message', 'JetStreamInvalidReply');
  return {
    subject: m.subject,
    seq: m.seq,
    data: m.data ? Buffer.from(m.data, 'base64') : EMPTY,
    time: m.time,
    headers: m.hdrs ? Buffer.from(m.hdrs, 'base64').toString('utf8') : undefined,
  };
}

/** What a reader of stored messages needs (a JsReader; unit tests give a stand-in). */
export interface MsgReads {
  get(stream: string, query: MsgQuery, timeoutMs: number): Promise<StoredMsg | undefined>;
}

export class JsReader implements MsgReads {
  private readonly mux: ReplyMux;

  constructor(nc: NatsConnection) {
    this.mux = new ReplyMux(nc);
  }

  /**
   * The stored message `query` names, or undefined when there is none. Rejects like a JsWriter's
   * write: `TIMEOUT`, `503`, `CONNECTION_CLOSED`, or JetStream's error (`api_error`).
   */
  get(stream: string, query: MsgQuery, timeoutMs: number): Promise<StoredMsg | undefined> {
    return this.mux.request(`$JS.API.STREAM.MSG.GET.${stream}`, encoder.encode(JSON.stringify(query)), timeoutMs, parseMsgGet);
  }

  close(): void {
    this.mux.close();
  }
}
