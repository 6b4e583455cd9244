/**
 * Changes waiting for the next interval: per session the net change since the last frame. A
 * join then a leave of the same session within one interval cancels out (and a leave then a
 * join), so a batch never carries both for one session and a flapping member costs nothing.
 */
import type { PresenceEntry } from '../bus/bus.ts';

export interface Pending {
  readonly kind: 'join' | 'leave';
  readonly entry: PresenceEntry;
}

export type Batch = Map<string, Pending>;

export function addJoin(batch: Batch, entry: PresenceEntry): void {
  const p = batch.get(entry.session);
  if (p?.kind === 'leave') batch.delete(entry.session);
  else batch.set(entry.session, { kind: 'join', entry });
}

export function addLeave(batch: Batch, entry: PresenceEntry): void {
  const p = batch.get(entry.session);
  if (p?.kind === 'join') batch.delete(entry.session);
  else batch.set(entry.session, { kind: 'leave', entry });
}

/** The batch as join and leave lists (leaves carry session and user only), emptied. */
export function drain(batch: Batch): { join: PresenceEntry[]; leave: PresenceEntry[] } {
  const join: PresenceEntry[] = [];
  const leave: PresenceEntry[] = [];
  for (const p of batch.values()) {
    if (p.kind === 'join') join.push(p.entry);
    else leave.push(p.entry.user === undefined ? { session: p.entry.session } : { session: p.entry.session, user: p.entry.user });
  }
  batch.clear();
  return { join, leave };
}
