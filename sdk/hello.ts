/**
 * The `hello` a client opens every socket with, as a pure function of what it knows: its token,
 * the session to resume, and its subscriptions' positions for a server-side restore.
 */
import type { HelloFrame, Position } from '../protocol/frames.ts';
import { MAX_RESTORE_TOPICS, PROTOCOL_VERSION } from '../protocol/version.ts';
import type { SessionInfo } from './types.ts';

/** Largest `hello.restore` the client sends (about; the gateway's default frame limit is 64 KiB). */
export const MAX_RESTORE_BYTES = 16_384;

export interface HelloInput {
  token: string | undefined;
  /** The session to resume (from the last `welcome`). */
  session: SessionInfo | undefined;
  /** The subscriptions the app still wants; `position` is undefined before their first `subscribed`. */
  subscriptions: readonly { topic: string; position: Position | undefined }[];
  /** `ClientOptions.restore`: false never asks for a server-side restore. */
  restore: boolean;
  /** Sent as `client`, for the server's logs. */
  name: string | undefined;
  /** `ClientOptions.info`: what this client shows on presence topics. */
  info?: unknown;
  /** Ask for compact `msg` frames (msgpack connections). */
  compact?: boolean;
  /** The last direct message handled (`hello.inbox` on a resume: only later ones come again). */
  inbox?: Position | undefined;
}

export interface Hello {
  frame: HelloFrame;
  /** The frame asks the server to restore the session's subscriptions (`restore`). */
  restore: boolean;
}

export function helloFrame({ token, session, subscriptions, restore, name, info, compact, inbox }: HelloInput): Hello {
  const frame: HelloFrame = { t: 'hello', v: PROTOCOL_VERSION };
  if (token !== undefined) frame.token = token;
  if (session) frame.session = { id: session.id, key: session.key };
  if (session && inbox) frame.inbox = { seq: inbox.seq, epoch: inbox.epoch };
  // Positions always come from here: only the client knows what it received.
  let restoring = session !== undefined && restore && subscriptions.length > 0;
  if (restoring) {
    const since: Record<string, Position> = {};
    let bytes = 0;
    for (const { topic, position } of subscriptions) {
      if (!position) continue;
      since[topic] = position;
      bytes += topic.length + position.epoch.length + 32;
    }
    // A hello must stay small (the server's frame limit): past this, subscribe one by one.
    if (bytes > MAX_RESTORE_BYTES || Object.keys(since).length > MAX_RESTORE_TOPICS) restoring = false;
    else frame.restore = { since };
  }
  if (name) frame.client = name;
  if (info !== undefined) frame.info = info;
  if (compact) frame.compact = true;
  return { frame, restore: restoring };
}
