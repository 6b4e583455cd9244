/**
 * Sending a direct message, whoever sends it (a client's `send`, `POST /api/send`): the recipient
 * is resolved through the session registry (nobody: 2010 at once), then the message is stored in
 * each session's inbox; the gateway holding a session delivers it from there (inbox-delivery.ts).
 */
import { ErrorCode, type Recipient } from '../../protocol/index.ts';
import type { DirectSender } from '../bus/inbox.ts';
import type { GatewayContext } from '../context.ts';

export type SendOutcome = { ok: true; sessions: number } | { ok: false; code: ErrorCode; message: string };

export async function sendDirect(ctx: GatewayContext, to: Recipient, data: unknown, from?: DirectSender): Promise<SendOutcome> {
  let ids: string[];
  let stored: unknown[];
  try {
    ids = await ctx.sessions.recipients(to);
    if (ids.length === 0) {
      const message = 'session' in to ? `no session ${to.session} (never existed, or past its TTL)` : 'the user has no session';
      return { ok: false, code: ErrorCode.NoRecipient, message };
    }
    stored = await Promise.all(ids.map((id) => ctx.inbox.append(id, { ...(from ? { from } : {}), data })));
  } catch (e) {
    ctx.log.warn('direct message failed', { error: (e as Error).message });
    return { ok: false, code: ErrorCode.Unavailable, message: 'direct message failed, retry later' };
  }
  return { ok: true, sessions: stored.length };
}

/** The size of `data` as its sender encoded it, checked against `direct.maxBytes` (4002). */
export function directTooLarge(ctx: GatewayContext, data: unknown, frameBytes: number, encode: (d: unknown) => Uint8Array | string): string | null {
  const max = ctx.config.direct.maxBytes;
  if (frameBytes <= max) return null;
  const encoded = encode(data);
  const size = typeof encoded === 'string' ? Buffer.byteLength(encoded) : encoded.byteLength;
  return size > max ? `data larger than ${max} bytes (direct.maxBytes)` : null;
}
