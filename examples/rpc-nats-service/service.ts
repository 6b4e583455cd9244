/**
 * An RPC service on NATS (NATS engine): serves `quotes.*` in the queue group `quotes`, so any
 * number of copies share the calls (each call reaches one). The gateway sends each call to
 * `<prefix>.rpc.<method>` with the caller's identity in headers.
 *
 *   npx tsx examples/rpc-nats-service/service.ts [nats-url] [prefix]
 *
 * Defaults: nats://127.0.0.1:4222, symphonic. Start it twice to see the queue group share the
 * calls (each answer says which instance served it). See README.md for the gateway's config.
 */
import { pathToFileURL } from 'node:url';
import { connect, type NatsConnection } from 'nats';
import { RpcServiceError, serveRpc } from '../../sdk/server/index.ts';

const PRICES: Record<string, number> = { 'sku-1': 9.9, 'sku-2': 24.5 };

/** Connects and serves; resolves once the server has registered the subscription. */
export async function startNatsService(servers: string, prefix = 'symphonic', instance = `pid-${process.pid}`): Promise<NatsConnection> {
  const nc = await connect({ servers, name: `quotes ${instance}` });
  serveRpc(
    nc,
    'quotes.*',
    ({ method, data, caller }) => {
      if (method !== 'quotes.price') throw new RpcServiceError(`no method ${method}`);
      const { sku, qty = 1 } = (data ?? {}) as { sku?: string; qty?: number };
      const price = PRICES[sku ?? ''];
      if (price === undefined) throw new RpcServiceError('unknown sku', { sku });
      // The caller comes from headers only the gateway sets, never from `data`.
      return { sku, qty, total: Math.round(price * qty * 100) / 100, quotedFor: caller.user ?? 'anonymous', instance };
    },
    { queue: 'quotes', prefix, onError: (e) => console.error('quote failed', e) },
  );
  await nc.flush();
  return nc;
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const [servers = 'nats://127.0.0.1:4222', prefix = 'symphonic'] = process.argv.slice(2);
  const nc = await startNatsService(servers, prefix);
  console.log(`quotes service (pid ${process.pid}) serving ${prefix}.rpc.quotes.* in queue group "quotes"`);
  for (const sig of ['SIGINT', 'SIGTERM'] as const) process.once(sig, () => void nc.drain());
}
