/**
 * A subscription's state machine, as one pure function (the Subscription class holds one
 * `status` field and changes it only through here).
 *
 *   unsubscribed   not active: never started, unsubscribed by the app, or refused by the server
 *   subscribing    first subscribe in flight (or waiting for the connection); no position yet
 *   subscribed     live: the state and position are current, messages are applied as they come
 *   resubscribing  had a position and is re-establishing it: after a reconnect, or to repair a gap
 */
export type SubscriptionStatus = 'unsubscribed' | 'subscribing' | 'subscribed' | 'resubscribing';

export type SubscriptionEvent =
  /** The app asked to subscribe. */
  | { type: 'subscribe' }
  /** The server's `subscribed` reply was applied. */
  | { type: 'subscribed' }
  /** The connection dropped: the subscription will be re-established on the next connection. */
  | { type: 'lost' }
  /** A gap (or a broken replay) was seen: resubscribe from the last position. */
  | { type: 'gap' }
  /** The server refused the subscription for good, or the app unsubscribed. */
  | { type: 'unsubscribe' };

/** The status after `event`, or null when the event does not apply in `status` (ignored). */
export function nextSubscriptionStatus(status: SubscriptionStatus, event: SubscriptionEvent): SubscriptionStatus | null {
  switch (event.type) {
    case 'subscribe':
      return status === 'unsubscribed' ? 'subscribing' : null;
    case 'subscribed':
      return status === 'subscribing' || status === 'resubscribing' ? 'subscribed' : null;
    case 'lost':
    case 'gap':
      return status === 'subscribed' ? 'resubscribing' : status === 'unsubscribed' ? null : status;
    case 'unsubscribe':
      return status === 'unsubscribed' ? null : 'unsubscribed';
  }
}
