import { describe, expect, it } from 'vitest';
import { nextConnectionState, type ConnectionEvent, type ConnectionState } from '../../sdk/connection-state.ts';
import { nextSubscriptionStatus, type SubscriptionEvent, type SubscriptionStatus } from '../../sdk/subscription-state.ts';

const connStates: ConnectionState[] = ['disconnected', 'connecting', 'connected', 'closed'];
const connEvents: ConnectionEvent['type'][] = ['connect', 'welcome', 'lost', 'offline', 'online', 'close'];

describe('connection state machine', () => {
  // Every (state, event) pair, spelled out: null = ignored.
  const table: Record<ConnectionState, Record<ConnectionEvent['type'], ConnectionState | null>> = {
    disconnected: { connect: 'connecting', welcome: null, lost: null, offline: null, online: 'connecting', close: 'closed' },
    connecting: { connect: null, welcome: 'connected', lost: 'connecting', offline: 'disconnected', online: null, close: 'closed' },
    connected: { connect: null, welcome: null, lost: 'connecting', offline: 'disconnected', online: null, close: 'closed' },
    closed: { connect: 'connecting', welcome: null, lost: null, offline: null, online: null, close: null },
  };
  for (const s of connStates) {
    for (const e of connEvents) {
      it(`${s} + ${e} -> ${table[s][e]}`, () => {
        expect(nextConnectionState(s, { type: e } as ConnectionEvent)).toBe(table[s][e]);
      });
    }
  }

  it('a closed client never reconnects by itself: only connect() leaves closed', () => {
    for (const e of connEvents) {
      const next = nextConnectionState('closed', { type: e } as ConnectionEvent);
      if (e !== 'connect') expect(next).toBeNull();
    }
  });
});

const subStatuses: SubscriptionStatus[] = ['unsubscribed', 'subscribing', 'subscribed', 'resubscribing'];
const subEvents: SubscriptionEvent['type'][] = ['subscribe', 'subscribed', 'lost', 'gap', 'unsubscribe'];

describe('subscription state machine', () => {
  const table: Record<SubscriptionStatus, Record<SubscriptionEvent['type'], SubscriptionStatus | null>> = {
    unsubscribed: { subscribe: 'subscribing', subscribed: null, lost: null, gap: null, unsubscribe: null },
    subscribing: { subscribe: null, subscribed: 'subscribed', lost: 'subscribing', gap: 'subscribing', unsubscribe: 'unsubscribed' },
    subscribed: { subscribe: null, subscribed: null, lost: 'resubscribing', gap: 'resubscribing', unsubscribe: 'unsubscribed' },
    resubscribing: { subscribe: null, subscribed: 'subscribed', lost: 'resubscribing', gap: 'resubscribing', unsubscribe: 'unsubscribed' },
  };
  for (const s of subStatuses) {
    for (const e of subEvents) {
      it(`${s} + ${e} -> ${table[s][e]}`, () => {
        expect(nextSubscriptionStatus(s, { type: e } as SubscriptionEvent)).toBe(table[s][e]);
      });
    }
  }
});
