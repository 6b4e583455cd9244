/**
 * Core NATS subscriptions at a few dozen bytes each, for what a gateway holds once per connected
 * session (the direct-message inbox, inbox.ts). `nc.subscribe` makes every subscription an async
 * iterator with three deferred promises and four wrapper closures: about 1.4 KB of heap, which
 * was a third of the NATS engine's memory per idle connection (loadtest/README.md, "Memory per
 * idle connection").
 *
 * A LightSub is one small object put into nats.js's own subscription table through its protocol
 * handler: nats.js sends SUB and UNSUB, sends the SUB again after a reconnect, and calls
 * `callback` for each MSG (with the LightSub as `this`), which is all a core subscription needs.
 * That handler is not public API: `lightSubscriber` checks that it is there and otherwise falls
 * back to `nc.subscribe` (same behaviour, the old cost); test/nats/light-subs.test.ts pins the
 * light path to the nats.js version in package.json (delivery, unsubscribe, resubscribe after a
 * nats-server restart).
 */
import type { Msg, NatsConnection, NatsError } from 'nats';

/** What nats.js's ProtocolHandler offers a subscription (nats.js 2.x, lib/nats-base-client/protocol.js). */
interface ProtocolHandler {
  subscribe(s: object): void;
  unsubscribe(s: object, max?: number): void;
  isClosed(): boolean;
}

/** One handler for many subscriptions: gets the subscription's `target` with each message. */
export type LightHandler<T> = (target: T, msg: Msg) => void;

/** A core subscription; `stop()` unsubscribes (idempotent). */
export interface LightSubscription {
  stop(): void;
}

class LightSub<T = unknown> implements LightSubscription {
  // Read and written by nats.js's ProtocolHandler: its sid, the MSGs counted, the auto-unsubscribe limit.
  sid = 0;
  received = 0;
  max: number | undefined = undefined;
  private target: T | null;

  constructor(
    private readonly protocol: ProtocolHandler,
    readonly subject: string,
    private readonly handler: LightHandler<T>,
    target: T,
  ) {
    this.target = target;
  }

  /** nats.js calls it for each MSG, and with an error (and no message) when the server refuses the subscription. */
  callback(err: NatsError | null, msg: Msg): void {
    if (err || this.target === null) return;
    this.handler(this.target, msg);
  }

  stop(): void {
    if (this.target === null) return;
    this.target = null;
    if (!this.protocol.isClosed()) this.protocol.unsubscribe(this);
  }

  /** nats.js: the subscription is removed (unsubscribed, connection closed). */
  close(): void {
    this.target = null;
  }

  /** nats.js: the connection drains. */
  drain(): Promise<void> {
    this.stop();
    return Promise.resolve();
  }
}

export interface LightSubscriber<T> {
  subscribe(subject: string, target: T): LightSubscription;
  /** Whether subscriptions are light (false: nats.js internals not found, `nc.subscribe` is used). */
  readonly light: boolean;
}

/** Subscriptions on `nc` whose messages all go to `handler`, each with its own target. */
export function lightSubscriber<T>(nc: NatsConnection, handler: LightHandler<T>): LightSubscriber<T> {
  const protocol = (nc as unknown as { protocol?: Partial<ProtocolHandler> }).protocol;
  const light = typeof protocol?.subscribe === 'function' && typeof protocol.unsubscribe === 'function' && typeof protocol.isClosed === 'function';
  return {
    light,
    subscribe(subject, target) {
      if (!light) {
        const sub = nc.subscribe(subject, { callback: (err, msg) => err || handler(target, msg) });
        return { stop: () => nc.isClosed() || sub.unsubscribe() };
      }
      if (nc.isClosed()) throw new Error('NATS connection closed');
      const s = new LightSub(protocol as ProtocolHandler, subject, handler, target);
      (protocol as ProtocolHandler).subscribe(s);
      return s;
    },
  };
}
