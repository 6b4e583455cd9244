/** The SDK's view of a topic's presence (sdk/presence.ts): frames applied as set operations. */
import { describe, expect, it } from 'vitest';
import { Presence } from '../../sdk/presence.ts';

describe('sdk Presence', () => {
  it('a full list, then changes applied as set operations, users grouped, events only for real changes', () => {
    const p = new Presence();
    const events: string[] = [];
    p.on('join', (ms) => events.push(`join ${ms.map((m) => m.session).join(',')}`));
    p.on('leave', (ms) => events.push(`leave ${ms.map((m) => m.session).join(',')}`));
    p._apply({ t: 'presence', topic: 't', count: 2, members: [{ session: 'a', user: 'u1' }, { session: 'b' }] });
    expect(p.listed).toBe(true);
    // Its own join again after the list, a new session of u1, a leave of a session it never had.
    p._apply({
      t: 'presence',
      topic: 't',
      count: 3,
      join: [
        { session: 'a', user: 'u1' },
        { session: 'c', user: 'u1' },
      ],
      leave: [{ session: 'zz' }],
    });
    expect(events).toEqual(['join c']);
    expect(p.count).toBe(3);
    expect(p.users().map((u) => [u.user, u.sessions.map((s) => s.session)])).toEqual([
      ['u1', ['a', 'c']],
      [undefined, ['b']],
    ]);
    p._apply({ t: 'presence', topic: 't', count: 2, leave: [{ session: 'a', user: 'u1' }] });
    expect(events.at(-1)).toBe('leave a');
    // Past the member limit: counts only.
    p._apply({ t: 'presence', topic: 't', count: 5000 });
    expect(p.listed).toBe(false);
    expect(p.members()).toEqual([]);
    expect(p.count).toBe(5000);
    p._reset();
    expect(p.count).toBe(0);
  });
});
