/**
 * Idempotency keys across gateways. The stream's duplicate window (message id = the key) is the
 * only memory every gateway shares, and it only says "seen": a publish carrying a key also
 * carries the digest of what it names (topic, kind, data) in a header, and a `duplicate` answer
 * is checked against the stored message's digest, so a key reused for a different publish is
 * refused instead of answered with the first publish's sequence.
 */
import { headers, type JetStreamManager, type MsgHdrs } from 'nats';
import { NatsBusError } from './errors.ts';
import { isNotFound } from './reader.ts';
import { withTimeout } from './requests.ts';

/** The header holding a keyed publish's digest (idempotency.ts publishDigest). */
export const DIGEST_HEADER = 'Symphonic-Digest';

/** The headers of a keyed publish (the client adds `Nats-Msg-Id` to them). */
export function digestHeaders(digest: string): MsgHdrs {
  const h = headers();
  h.set(DIGEST_HEADER, digest);
  return h;
}

/**
 * Resolves when the message stored at `seq` is the same publish as `digest`; rejects with a
 * NatsBusError 'conflict' when it is another one. Unverifiable counts as the same publish: the
 * message already dropped by retention, or stored without a digest (by an older gateway). Read
 * failures are thrown as they come (a retryable one retries the whole publish: same message id).
 */
export async function checkDuplicate(jsm: JetStreamManager, stream: string, seq: number, digest: string, key: string, timeoutMs: number): Promise<void> {
  let first: string | undefined;
  try {
    const stored = await withTimeout(jsm.streams.getMessage(stream, { seq }), timeoutMs, 'idempotency check');
    first = stored.header?.get(DIGEST_HEADER);
  } catch (e) {
    if (isNotFound(e)) return;
    throw e;
  }
  if (first && first !== digest) {
    throw new NatsBusError('conflict', `idempotency key ${JSON.stringify(key)} was already used for a different publish (stream sequence ${seq})`);
  }
}
