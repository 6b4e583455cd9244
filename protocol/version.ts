/** Wire protocol version carried in `hello` and `welcome`. Bumped on any incompatible change. */
export const PROTOCOL_VERSION = 1;

/** Positions a `hello.restore` may carry (the frame size limit applies as well). */
export const MAX_RESTORE_TOPICS = 1024;

/** WebSocket subprotocols: the client offers one; the server echoes the one it picked. */
export const SUBPROTOCOL_MSGPACK = 'symphonic.v1.msgpack';
export const SUBPROTOCOL_JSON = 'symphonic.v1.json';
export type Encoding = 'msgpack' | 'json';

export function subprotocolFor(encoding: Encoding): string {
  return encoding === 'json' ? SUBPROTOCOL_JSON : SUBPROTOCOL_MSGPACK;
}

/**
 * Picks the encoding from a Sec-WebSocket-Protocol header (a comma-separated offer list).
 * No offer means msgpack (the default); an offer with none of ours means null (refuse).
 */
export function negotiateEncoding(header: string | undefined): Encoding | null {
  if (!header || !header.trim()) return 'msgpack';
  for (const p of header.split(',')) {
    const name = p.trim();
    if (name === SUBPROTOCOL_MSGPACK) return 'msgpack';
    if (name === SUBPROTOCOL_JSON) return 'json';
  }
  return null;
}
