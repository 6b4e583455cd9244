/**
 * What a topic's local subscribers get at the end of an interval, as a pure transition of what
 * they were last told:
 *
 *   count-only (namespace mode, or past maxMembers)  -> `{count}` when the count changed, or when
 *                                                       they held a list (now counts only)
 *   under the limit after counts only               -> `{count, members}` (the whole list again)
 *   under the limit, list held                      -> `{count, join, leave}` when anything changed
 */
export interface PushState {
  /** Subscribers hold a full list (false: counts only). */
  readonly listed: boolean;
  /** The count they were last told. */
  readonly count: number;
}

export type PushKind = 'count' | 'members' | 'changes' | null;

export function nextPush(state: PushState, countOnly: boolean, count: number, changed: boolean): { kind: PushKind; state: PushState } {
  if (countOnly) return { kind: count !== state.count || state.listed ? 'count' : null, state: { listed: false, count } };
  if (!state.listed) return { kind: 'members', state: { listed: true, count } };
  return { kind: changed ? 'changes' : null, state: { listed: true, count } };
}
