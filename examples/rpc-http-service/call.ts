/**
 * Calls an RPC method through the gateway with the SDK and prints the answer (or the error).
 *
 *   npx tsx examples/rpc-http-service/call.ts [ws-url] [method] [json data]
 *
 * Defaults: ws://127.0.0.1:9001/ws, quotes.price, {"sku":"sku-1","qty":2}.
 */
import { pathToFileURL } from 'node:url';
import { WebSocket } from 'ws';
import { ServiceError, SymphonicClient, SymphonicError } from '../../sdk/index.ts';

/** One call on a fresh connection; returns the line to print. */
export async function callOnce(url: string, method: string, data: unknown, token?: string): Promise<string> {
  const client = new SymphonicClient(url, { WebSocket, name: 'examples/rpc', ...(token ? { token } : {}) });
  client.connect();
  try {
    const answer = await client.rpc(method, data, { timeout: 5000 });
    return `${method} -> ${JSON.stringify(answer)}`;
  } catch (e) {
    if (!(e instanceof SymphonicError)) throw e;
    // A service error (2012) carries what the service attached in `data`.
    return `${method} failed: ${e.code} ${e.message}${e instanceof ServiceError ? ` ${JSON.stringify(e.data)}` : ''}`;
  } finally {
    client.close();
  }
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const [url = 'ws://127.0.0.1:9001/ws', method = 'quotes.price', json = '{"sku":"sku-1","qty":2}'] = process.argv.slice(2);
  console.log(await callOnce(url, method, JSON.parse(json)));
}
