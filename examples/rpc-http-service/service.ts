/**
 * A tiny RPC service over HTTP (node:http), for either engine: the gateway POSTs each call of a
 * method configured with this `url` here, with the caller's identity in headers.
 *
 *   npx tsx examples/rpc-http-service/service.ts [port]      (default 9100, on 127.0.0.1)
 *
 * Methods: `quotes.price` {sku, qty} -> {sku, qty, total, quotedFor}; an unknown sku is a service
 * error (the client gets 2012 with {sku}). See README.md for the gateway's config.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { pathToFileURL } from 'node:url';
import { rpcHttpHandler, RpcServiceError, type RpcRequest } from '../../sdk/server/index.ts';

const PRICES: Record<string, number> = { 'sku-1': 9.9, 'sku-2': 24.5 };

export function quote({ method, data, caller }: RpcRequest): unknown {
  if (method !== 'quotes.price') throw new RpcServiceError(`no method ${method}`);
  const { sku, qty = 1 } = (data ?? {}) as { sku?: string; qty?: number };
  const price = PRICES[sku ?? ''];
  if (price === undefined) throw new RpcServiceError('unknown sku', { sku });
  // The caller comes from the gateway's headers, never from `data`.
  return { sku, qty, total: Math.round(price * qty * 100) / 100, quotedFor: caller.user ?? 'anonymous' };
}

/** Listens on 127.0.0.1:`port` (0: any free port); resolves with the server and its URL. */
export async function startHttpService(port = 9100): Promise<{ server: Server; url: string }> {
  // Only the gateway should reach this: whoever can POST here can claim any identity.
  const server = createServer(rpcHttpHandler(quote, { onError: (e) => console.error('quote failed', e) }));
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
  return { server, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/rpc` };
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const { server, url } = await startHttpService(Number(process.argv[2] ?? 9100));
  console.log(`quotes service on ${url}`);
  process.once('SIGINT', () => server.close());
}
