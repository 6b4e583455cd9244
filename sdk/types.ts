/** Public data shapes shared by the client and subscriptions. */
import type { MessageKind, Position } from '../protocol/frames.ts';
import type { MergePatch } from './schema.ts';

export type { MessageKind, Position };

/** One message of a topic, as handlers receive it; `data` is typed by the subscription's schemas. */
export type Message<S = unknown, E = unknown> = {
  topic: string;
  seq: number;
  /** Sequence of the topic's previous message (0 for the first). */
  prev: number;
  /** Publish time, ms since the Unix epoch. */
  ts: number;
} & ({ kind: 'event'; data: E } | { kind: 'set'; data: S } | { kind: 'patch'; data: MergePatch<S> });

/** A publish acknowledgement: where the message landed in the topic. */
export interface PublishAck {
  seq: number;
  epoch: string;
}

export interface HistoryResult {
  topic: string;
  epoch: string;
  /** The topic's newest sequence when the history was read. */
  seq: number;
  messages: Message[];
  /** False when `since` is older than what the server retains: the list does not start right after it. */
  complete: boolean;
}

export interface SessionInfo {
  id: string;
  key: string;
}
