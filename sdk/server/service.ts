/**
 * Writing an RPC service (docs/services.md): the gateway forwards a client's `rpc` with the
 * caller's identity in headers only it sets. `serveRpc` answers over NATS in a queue group (NATS
 * engine); `rpcHttpHandler` is a node:http request listener for a method's `url` (both engines).
 * A handler returns the answer (JSON) or throws `RpcServiceError` (the client gets 2012 with its
 * message and data); any other throw answers "internal service error".
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { headers as natsHeaders, type Msg, type NatsConnection, type Subscription } from 'nats';
import { DEFAULT_BUS_PREFIX } from '../../protocol/envelope.ts';

/** Who called, as the gateway vouches for it. */
export interface RpcCaller {
  /** The token's `sub`; null for an anonymous caller. */
  readonly user: string | null;
  readonly session: string;
  /** The gateway the caller is connected to. */
  readonly node: string;
  /** The token claims the gateway forwards (`rpc.claims`). */
  readonly claims: Readonly<Record<string, unknown>>;
}

export interface RpcRequest<T = unknown> {
  readonly method: string;
  readonly data: T;
  readonly caller: RpcCaller;
}

export type RpcHandler<T = unknown> = (request: RpcRequest<T>) => unknown;

/** Thrown by a handler: the caller gets error 2012 with this message and `data`. */
export class RpcServiceError extends Error {
  override name = 'RpcServiceError';
  constructor(
    message: string,
    readonly data?: unknown,
  ) {
    super(message);
  }
}

/** The caller from the gateway's headers (`get` reads one header, any case). */
export function callerFromHeaders(get: (name: string) => string | null | undefined): RpcCaller {
  let claims: Record<string, unknown> = {};
  try {
    const parsed: unknown = JSON.parse(get('Symphonic-Claims') || '{}');
    if (parsed && typeof parsed === 'object' && !Array.isArray(parsed)) claims = parsed as Record<string, unknown>;
  } catch {
    // No claims rather than a failed call.
  }
  return { user: get('Symphonic-User') || null, session: get('Symphonic-Session') ?? '', node: get('Symphonic-Node') ?? '', claims };
}

export interface ServeOptions {
  /** Queue group: each call reaches one member. Default `symphonic-rpc`. */
  queue?: string;
  /** The deployment prefix, as the gateways' `bus.nats.prefix`. Default `symphonic`. */
  prefix?: string;
  /** Told of handler failures other than RpcServiceError (the caller only hears "internal service error"). */
  onError?: (error: unknown, request: RpcRequest) => void;
}

/**
 * Serves `method` (a name or a pattern such as `orders.*`) on `<prefix>.rpc.<method>` in a queue
 * group. NATS permissions the service needs: subscribe `<prefix>.rpc.<method>`, publish `_INBOX.>`.
 */
export function serveRpc<T = unknown>(nc: NatsConnection, method: string, handler: RpcHandler<T>, options: ServeOptions = {}): Subscription {
  const base = `${options.prefix ?? DEFAULT_BUS_PREFIX}.rpc.`;
  return nc.subscribe(base + method, {
    queue: options.queue ?? 'symphonic-rpc',
    callback: (err, msg) => {
      if (err) return;
      void answerNats(msg, msg.subject.slice(base.length), handler as RpcHandler, options);
    },
  });
}

async function answerNats(msg: Msg, method: string, handler: RpcHandler, options: ServeOptions): Promise<void> {
  const caller = callerFromHeaders((name) => (msg.headers?.has(name) ? msg.headers.get(name) : null));
  let data: unknown = null;
  try {
    data = msg.data.length === 0 ? null : JSON.parse(new TextDecoder().decode(msg.data));
  } catch {
    return respondError(msg, new RpcServiceError('the request is not JSON'));
  }
  const request: RpcRequest = { method, data, caller };
  try {
    const answer = await handler(request);
    msg.respond(new TextEncoder().encode(JSON.stringify(answer ?? null)));
  } catch (e) {
    if (!(e instanceof RpcServiceError)) options.onError?.(e, request);
    respondError(msg, e instanceof RpcServiceError ? e : new RpcServiceError('internal service error'));
  }
}

function respondError(msg: Msg, e: RpcServiceError): void {
  const h = natsHeaders();
  h.set('Nats-Service-Error', e.message.replace(/[\r\n]+/g, ' ') || 'service error');
  h.set('Nats-Service-Error-Code', '500');
  msg.respond(e.data === undefined ? new Uint8Array(0) : new TextEncoder().encode(JSON.stringify(e.data)), { headers: h });
}

/** Largest request body an HTTP service reads (the gateway's frames are smaller). */
const MAX_BODY = 1024 * 1024;

/**
 * A node:http listener for RPC calls: POST `{method, data}` with the identity headers in, the
 * handler's answer out (200, JSON), or `{"error": {"message", "data"}}` (422 for RpcServiceError,
 * 500 otherwise). Only the gateway should be able to reach it: whoever can send it requests can
 * claim any identity in the headers.
 */
export function rpcHttpHandler(handler: RpcHandler, options: Pick<ServeOptions, 'onError'> = {}): (req: IncomingMessage, res: ServerResponse) => void {
  return (req, res) => {
    void (async () => {
      if (req.method !== 'POST') return send(res, 405, { error: { message: 'POST only' } });
      let body: { method?: unknown; data?: unknown };
      try {
        body = JSON.parse(await readBody(req)) as typeof body;
      } catch {
        return send(res, 400, { error: { message: 'the request is not JSON' } });
      }
      const header = (name: string) => {
        const v = req.headers[name.toLowerCase()];
        return Array.isArray(v) ? v[0] : v;
      };
      const request: RpcRequest = { method: String(body?.method ?? ''), data: body?.data ?? null, caller: callerFromHeaders(header) };
      try {
        send(res, 200, (await handler(request)) ?? null);
      } catch (e) {
        if (e instanceof RpcServiceError) return send(res, 422, { error: { message: e.message, ...(e.data === undefined ? {} : { data: e.data }) } });
        options.onError?.(e, request);
        send(res, 500, { error: { message: 'internal service error' } });
      }
    })();
  };
}

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > MAX_BODY) return req.destroy(new Error('request body too large'));
      chunks.push(c);
    });
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

function send(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}
