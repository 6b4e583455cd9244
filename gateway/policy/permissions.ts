/**
 * Who may subscribe to (and read the history of) a topic, and who may publish to it, from the
 * topic's namespace and the connection's identity. Pure decisions, evaluated once per request
 * frame on the ingress side; deliveries are never checked (a socket only ever receives topics it
 * was allowed to join).
 *
 * Subscribe / history, in order:
 *   1. the connection token's `subs` patterns match the topic: allowed;
 *   2. a subscription token (sub.token) is for this user (or names no user) and names the topic: allowed;
 *   3. personal namespace: the token after the namespace must be the user's `sub` or one of its
 *      `channels`; otherwise denied;
 *   4. the namespace mode: `anyone`; `authenticated` (any verified token); `token` (only 1 or 2).
 * Publish: `clientPublish: false` denies every client; then the namespace mode: `server` (no
 * client), `token` (the token's `pubs` must match), `authenticated`, `anyone`.
 */
import { ErrorCode } from '../../protocol/index.ts';
import type { Identity, SubscriptionGrant } from './auth.ts';
import type { Namespace } from './namespaces.ts';

export type Decision = { ok: true } | { ok: false; code: ErrorCode; message: string };
export type Denial = Extract<Decision, { ok: false }>;

const ALLOW: Decision = { ok: true };
const deny = (code: ErrorCode, message: string): Decision => ({ ok: false, code, message });
const label = (ns: Namespace) => (ns.name ? `namespace "${ns.name}"` : 'the default namespace');

export function grantCovers(grant: SubscriptionGrant, topic: string): boolean {
  return grant.topic === topic || grant.subs.matches(topic);
}

export function canSubscribe(id: Identity, ns: Namespace, topic: string, grant: SubscriptionGrant | null = null): Decision {
  if (id.subs.matches(topic)) return ALLOW;
  if (grant) {
    if (grant.user !== null && grant.user !== id.user) return deny(ErrorCode.Forbidden, 'the subscription token belongs to another user');
    if (!grantCovers(grant, topic)) return deny(ErrorCode.Forbidden, 'the subscription token does not name this topic');
    return ALLOW;
  }
  if (ns.personal) {
    if (id.user === null) return deny(ErrorCode.Unauthorized, `${label(ns)} holds personal topics: authenticate first`);
    const owner = topic.split('.')[ns.depth];
    if (owner === undefined || (owner !== id.user && !id.channels.includes(owner))) {
      return deny(ErrorCode.Forbidden, `personal topic of another user (${ns.name}.<your user id>.… only)`);
    }
  }
  switch (ns.subscribe) {
    case 'anyone':
      return ALLOW;
    case 'authenticated':
      return id.user !== null ? ALLOW : deny(ErrorCode.Unauthorized, `${label(ns)} needs an authenticated connection`);
    case 'token':
      return deny(ErrorCode.Forbidden, `${label(ns)} needs a subscription token (sub.token) or a matching "subs" claim`);
  }
}

export function canPublish(id: Identity, ns: Namespace, topic: string, clientPublish: boolean): Decision {
  if (!clientPublish) return deny(ErrorCode.PublishNotAllowed, 'clients may not publish on this gateway');
  switch (ns.publish) {
    case 'server':
      return deny(ErrorCode.PublishNotAllowed, `clients may not publish to ${label(ns)}`);
    case 'token':
      return id.pubs.matches(topic) ? ALLOW : deny(ErrorCode.Forbidden, `publishing to ${label(ns)} needs a matching "pubs" claim`);
    case 'authenticated':
      return id.user !== null ? ALLOW : deny(ErrorCode.Unauthorized, `publishing to ${label(ns)} needs an authenticated connection`);
    case 'anyone':
      return ALLOW;
  }
}
