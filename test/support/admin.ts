/**
 * The admin API from a test (gateway/admin/routes.ts): authorised GETs and POSTs answering
 * `{status, body}`, and `poll` for figures that have no event to wait on (a heartbeat, a sample).
 */
import { connectRaw } from './raw-client.ts';

export interface Answer<T = any> {
  readonly status: number;
  readonly body: T;
}

export function adminClient(httpUrl: string, key: string | null) {
  const headers = (): Record<string, string> => (key === null ? {} : { authorization: `Bearer ${key}` });
  return {
    async get<T = any>(path: string): Promise<Answer<T>> {
      const r = await fetch(`${httpUrl}${path}`, { headers: headers() });
      return { status: r.status, body: (await r.json()) as T };
    },
    async post<T = any>(path: string, body: unknown): Promise<Answer<T>> {
      const r = await fetch(`${httpUrl}${path}`, { method: 'POST', headers: { ...headers(), 'content-type': 'application/json' }, body: JSON.stringify(body) });
      return { status: r.status, body: (await r.json()) as T };
    },
  };
}

/**
 * Calls `fn` until it returns a truthy value (re-asked every `pauseMs`: a retry pause, not a wait
 * for something), failing after `timeoutMs` with the last value seen.
 */
export async function poll<T>(what: string, fn: () => Promise<T> | T, timeoutMs = 10_000, pauseMs = 50): Promise<NonNullable<T>> {
  const deadline = Date.now() + timeoutMs;
  let last: T | undefined;
  for (;;) {
    last = await fn();
    if (last) return last as NonNullable<T>;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what} (last: ${JSON.stringify(last)?.slice(0, 300)})`);
    await new Promise((r) => setTimeout(r, pauseMs));
  }
}

/** A client that says hello with `token` (a JWT) and awaits its welcome. */
export async function connectWithToken(url: string, token: string) {
  const c = await connectRaw(url, 'json');
  c.send({ t: 'hello', v: 1, token });
  const welcome = await c.next((f) => f.t === 'welcome');
  return { c, welcome: welcome as Extract<typeof welcome, { t: 'welcome' }> };
}
