/** Subprotocol negotiation, error and close codes. */
import { describe, expect, it } from 'vitest';
import { CloseCode, ErrorCode, isTerminalClose } from '../../protocol/codes.ts';
import { PROTOCOL_VERSION, SUBPROTOCOL_JSON, SUBPROTOCOL_MSGPACK, negotiateEncoding, subprotocolFor } from '../../protocol/version.ts';

describe('subprotocols', () => {
  it('has the documented names and version', () => {
    expect(PROTOCOL_VERSION).toBe(1);
    expect(SUBPROTOCOL_MSGPACK).toBe('symphonic.v1.msgpack');
    expect(SUBPROTOCOL_JSON).toBe('symphonic.v1.json');
    expect(subprotocolFor('msgpack')).toBe('symphonic.v1.msgpack');
    expect(subprotocolFor('json')).toBe('symphonic.v1.json');
  });
});

describe('negotiateEncoding (Sec-WebSocket-Protocol offer -> encoding)', () => {
  it.each<[string | undefined, 'msgpack' | 'json' | null]>([
    // No offer: msgpack is the default.
    [undefined, 'msgpack'],
    ['', 'msgpack'],
    ['   ', 'msgpack'],
    // One of ours.
    ['symphonic.v1.msgpack', 'msgpack'],
    ['symphonic.v1.json', 'json'],
    ['  symphonic.v1.json  ', 'json'],
    // A list: the client's first supported entry wins.
    ['symphonic.v1.json, symphonic.v1.msgpack', 'json'],
    ['symphonic.v1.msgpack,symphonic.v1.json', 'msgpack'],
    ['graphql-ws, symphonic.v1.json', 'json'],
    ['chat,  symphonic.v1.msgpack ,x', 'msgpack'],
    // Offers with none of ours: refused (HTTP 400 at upgrade).
    ['graphql-ws', null],
    ['symphonic.v2.msgpack', null],
    ['symphonic.v1', null],
    ['SYMPHONIC.V1.JSON', null],
    ['symphonic.v1.json;q=1', null],
    [',', null],
  ])('%j -> %s', (header, expected) => {
    expect(negotiateEncoding(header)).toBe(expected);
  });
});

describe('isTerminalClose', () => {
  it('is true for the terminal application range 4500-4999 only', () => {
    expect(isTerminalClose(4500)).toBe(true);
    expect(isTerminalClose(4750)).toBe(true);
    expect(isTerminalClose(4999)).toBe(true);
    expect(isTerminalClose(4499)).toBe(false);
    expect(isTerminalClose(4000)).toBe(false);
    expect(isTerminalClose(5000)).toBe(false);
    expect(isTerminalClose(3999)).toBe(false);
  });

  it('classifies every defined close code as documented', () => {
    const terminal = ['BadProtocol', 'Unauthorized', 'Forbidden', 'TooManyErrors', 'Kicked'];
    const reconnect = [
      'Normal',
      'GoingAway',
      'MessageTooBig',
      'InternalError',
      'ServerShutdown',
      'SlowConsumer',
      'HandshakeTimeout',
      'IdleTimeout',
      'SessionTakenOver',
      'TokenExpired',
      'RateLimited',
      'TooManyConnections',
    ];
    expect(Object.keys(CloseCode).sort()).toEqual([...terminal, ...reconnect].sort());
    for (const name of terminal) expect(isTerminalClose(CloseCode[name as keyof typeof CloseCode]), name).toBe(true);
    for (const name of reconnect) expect(isTerminalClose(CloseCode[name as keyof typeof CloseCode]), name).toBe(false);
  });

  it('treats abnormal closure (1006, no close frame) as transient', () => {
    expect(isTerminalClose(1006)).toBe(false);
  });
});

describe('codes', () => {
  it('error codes are unique and each lies in its documented range', () => {
    const values = Object.values(ErrorCode);
    expect(new Set(values).size).toBe(values.length);
    const range: Record<string, number> = {
      BadFrame: 1,
      InvalidFrame: 1,
      UnknownFrameType: 1,
      FrameTooLarge: 1,
      HandshakeRequired: 1,
      AlreadyHandshaken: 1,
      UnsupportedVersion: 1,
      BadTopic: 2,
      NotSubscribed: 2,
      AlreadySubscribed: 2,
      PublishNotAllowed: 2,
      BadRequest: 2,
      NotFound: 2,
      InvalidPayload: 2,
      IdempotencyKeyReused: 2,
      SequenceConflict: 2,
      PresenceOff: 2,
      NoRecipient: 2,
      UnknownMethod: 2,
      ServiceError: 2,
      Unauthorized: 3,
      Forbidden: 3,
      TokenExpired: 3,
      RateLimited: 4,
      TooManySubscriptions: 4,
      PayloadTooLarge: 4,
      LimitExceeded: 4,
      TooManyConnections: 4,
      ReplyTooLarge: 4,
      Internal: 5,
      Unavailable: 5,
      ServiceTimeout: 5,
      NoResponders: 5,
    };
    expect(Object.keys(ErrorCode).sort()).toEqual(Object.keys(range).sort());
    for (const [name, code] of Object.entries(ErrorCode)) expect(Math.floor(code / 1000), name).toBe(range[name]);
  });

  it('close codes are unique and application codes sit in 4000-4999', () => {
    const values = Object.values(CloseCode);
    expect(new Set(values).size).toBe(values.length);
    for (const code of values) expect(code < 1016 || (code >= 4000 && code <= 4999), String(code)).toBe(true);
  });
});
