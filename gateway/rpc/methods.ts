/**
 * Which `rpc.methods` entry serves a method. Keys are exact names or NATS-style patterns
 * (`orders.*`, `billing.>`, ../policy/patterns.ts). The most specific key wins: keys are compared
 * token by token from the left, and at the first token where they differ a literal beats `*`,
 * which beats `>` (so `orders.create` > `orders.*` > `orders.>` > `>`, and `a.b.*` > `a.*.c`).
 */
import { matchPattern, patternError } from '../policy/patterns.ts';

export interface MethodConfig {
  readonly url?: string | undefined;
  readonly allow: 'anyone' | 'authenticated' | 'token';
  readonly timeoutMs?: number | undefined;
}

export interface ResolvedMethod extends MethodConfig {
  /** The `rpc.methods` key that matched. */
  readonly key: string;
}

export type MethodTable = (method: string) => ResolvedMethod | null;

/** Compiles `rpc.methods`; throws on a key that is not a valid name or pattern. */
export function methodTable(methods: Readonly<Record<string, MethodConfig>>): MethodTable {
  const exact = new Map<string, ResolvedMethod>();
  const wild: ResolvedMethod[] = [];
  for (const [key, cfg] of Object.entries(methods)) {
    const err = patternError(key);
    if (err) throw new Error(`rpc.methods ${JSON.stringify(key)}: ${err}`);
    const entry = { ...cfg, key };
    if (key.split('.').some((t) => t === '*' || t === '>')) wild.push(entry);
    else exact.set(key, entry);
  }
  wild.sort((a, b) => compareSpecificity(a.key, b.key));
  return (method) => exact.get(method) ?? wild.find((m) => matchPattern(m.key, method)) ?? null;
}

const rank = (token: string | undefined) => (token === undefined ? 3 : token === '>' ? 2 : token === '*' ? 1 : 0);

/** Negative when `a` is more specific than `b`. */
export function compareSpecificity(a: string, b: string): number {
  const ta = a.split('.');
  const tb = b.split('.');
  for (let i = 0; i < Math.max(ta.length, tb.length); i++) {
    const d = rank(ta[i]) - rank(tb[i]);
    if (d !== 0) return d;
  }
  return a < b ? -1 : a > b ? 1 : 0;
}
