/**
 * One session's membership of one topic on this gateway, as a pure transition function.
 * `holders` counts its live subscriptions here (a resume on this gateway may subscribe before the
 * old socket's close is seen); `grace` is set while no socket holds it and it waits for a resume.
 *
 *   (none)  --subscribe-->            {1}                   effect: join
 *   {h}     --subscribe-->            {h+1}                 (from grace: stop-grace, no join)
 *   {h}     --unsubscribe-->          {h-1}, or (none)      effect: leave when the last one goes
 *   {h}     --socket-gone-->          {h-1}, or {0, grace}  effect: start-grace when the last one goes
 *   {0,g}   --grace-over-->           (none)                effect: leave
 */
export interface MemberState {
  readonly holders: number;
  readonly grace: boolean;
}
export type MemberEvent = 'subscribe' | 'unsubscribe' | 'socket-gone' | 'grace-over';
export type MemberEffect = 'join' | 'leave' | 'start-grace' | 'stop-grace' | null;

export function nextMember(state: MemberState | null, event: MemberEvent): { state: MemberState | null; effect: MemberEffect } {
  if (event === 'subscribe') {
    if (state === null) return { state: { holders: 1, grace: false }, effect: 'join' };
    return { state: { holders: state.holders + 1, grace: false }, effect: state.grace ? 'stop-grace' : null };
  }
  if (state === null) return { state, effect: null };
  if (event === 'grace-over') return state.grace ? { state: null, effect: 'leave' } : { state, effect: null };
  if (state.holders === 0) return { state, effect: null }; // in grace: no subscription left to end
  if (state.holders > 1) return { state: { holders: state.holders - 1, grace: false }, effect: null };
  return event === 'unsubscribe' ? { state: null, effect: 'leave' } : { state: { holders: 0, grace: true }, effect: 'start-grace' };
}
