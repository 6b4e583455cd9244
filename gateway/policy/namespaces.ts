/**
 * Namespaces: policy per topic family, from config. A topic belongs to the configured namespace
 * whose name is the longest dot-token prefix of it (`chat` owns `chat` and `chat.room-1`; a
 * `chat.vip` entry would own `chat.vip.x`), else to the default namespace. Every namespace field
 * not set falls back to `defaultNamespace`, whose own defaults keep the gateway open out of the
 * box. A built-in personal namespace `user` (`user.<sub>.…` only for that user) exists unless
 * the config defines `user` itself.
 */
import type { GatewayConfig } from '../config.ts';
import { compileSchema, type JsonSchema, type SchemaCheck } from './schema.ts';

export type SubscribeMode = 'anyone' | 'authenticated' | 'token';
export type PublishMode = 'server' | 'token' | 'authenticated' | 'anyone';
/** Presence on a namespace's topics: member lists, counts only, or none. */
export type PresenceMode = 'members' | 'count' | false;

/** One namespace as written in config (every field optional). */
export interface NamespaceConfig {
  subscribe?: SubscribeMode | undefined;
  publish?: PublishMode | undefined;
  history?: { size?: number | undefined; ageMs?: number | undefined } | undefined;
  presence?: PresenceMode | undefined;
  maxPayloadBytes?: number | undefined;
  maxTopicLength?: number | undefined;
  personal?: boolean | undefined;
  schema?: JsonSchema | undefined;
}

export interface HistoryPolicy {
  /** Messages kept per topic. */
  readonly size: number;
  /** Oldest message age kept, ms. */
  readonly ageMs: number;
}

/** A namespace with every field resolved. */
export interface Namespace {
  /** The configured name, or '' for the default namespace. */
  readonly name: string;
  /** How many leading topic tokens the name covers (0 for the default). */
  readonly depth: number;
  readonly subscribe: SubscribeMode;
  readonly publish: PublishMode;
  readonly history: HistoryPolicy;
  readonly presence: PresenceMode;
  readonly maxPayloadBytes: number;
  readonly maxTopicLength: number;
  /** The token after the namespace must be the user's `sub` (or one of its `channels`). */
  readonly personal: boolean;
  readonly schema: SchemaCheck | null;
}

export interface Namespaces {
  /** The namespace that governs `topic`. */
  of(topic: string): Namespace;
  /** Retention for `topic` (what the bus engines should keep per topic). */
  historyFor(topic: string): HistoryPolicy;
  readonly all: readonly Namespace[];
}

/** The built-in personal namespace, unless the config defines `user`. */
export const BUILTIN_USER_NAMESPACE: NamespaceConfig = { subscribe: 'authenticated', publish: 'server', personal: true };

export function createNamespaces(config: GatewayConfig): Namespaces {
  const base = config.defaultNamespace as NamespaceConfig;
  const resolve = (name: string, own: NamespaceConfig): Namespace => {
    const pick = <K extends keyof NamespaceConfig>(k: K): NamespaceConfig[K] => (own[k] !== undefined ? own[k] : base[k]);
    const schema = pick('schema');
    return {
      name,
      depth: name === '' ? 0 : name.split('.').length,
      subscribe: pick('subscribe') ?? 'anyone',
      publish: pick('publish') ?? (config.clientPublish ? 'anyone' : 'server'),
      history: {
        size: own.history?.size ?? base.history?.size ?? config.bus.history.size,
        ageMs: own.history?.ageMs ?? base.history?.ageMs ?? config.bus.history.ageMs,
      },
      presence: pick('presence') ?? false,
      maxPayloadBytes: pick('maxPayloadBytes') ?? config.ws.maxFrameBytes,
      maxTopicLength: Math.min(pick('maxTopicLength') ?? config.limits.maxTopicLength, config.limits.maxTopicLength),
      personal: own.personal ?? false, // never inherited: a personal default would lock every topic
      schema: schema ? compileSchema(schema) : null,
    };
  };
  const configured: Record<string, NamespaceConfig> = { user: BUILTIN_USER_NAMESPACE, ...(config.namespaces as Record<string, NamespaceConfig>) };
  const byName = new Map<string, Namespace>();
  for (const [name, own] of Object.entries(configured)) byName.set(name, resolve(name, own));
  const fallback = resolve('', {});
  const maxDepth = Math.max(0, ...[...byName.values()].map((n) => n.depth));
  const single = maxDepth <= 1;

  function of(topic: string): Namespace {
    const dot = topic.indexOf('.');
    if (single) return byName.get(dot < 0 ? topic : topic.slice(0, dot)) ?? fallback;
    const tokens = topic.split('.');
    for (let n = Math.min(maxDepth, tokens.length); n > 0; n--) {
      const ns = byName.get(n === tokens.length ? topic : tokens.slice(0, n).join('.'));
      if (ns) return ns;
    }
    return fallback;
  }

  return { of, historyFor: (topic) => of(topic).history, all: [fallback, ...byName.values()] };
}

const cache = new WeakMap<GatewayConfig, Namespaces>();

/**
 * Retention for a topic under `config`: `{size, ageMs}` of its namespace (else of the default
 * namespace, else `bus.history`). For the bus engines; cached per config object.
 */
export function historyFor(topic: string, config: GatewayConfig): HistoryPolicy {
  return namespacesOf(config).historyFor(topic);
}

/**
 * The widest retention any topic gets: what a store shared by every namespace (the NATS stream)
 * must keep; narrower namespaces are applied when reading.
 */
export function widestHistory(config: GatewayConfig): HistoryPolicy {
  const all = namespacesOf(config).all.map((n) => n.history);
  return { size: Math.max(...all.map((h) => h.size)), ageMs: Math.max(...all.map((h) => h.ageMs)) };
}

/** Every namespace's name and max age ('' is the default namespace): for age purges in a shared store. */
export function namespaceAges(config: GatewayConfig): Array<{ name: string; ageMs: number }> {
  return namespacesOf(config).all.map((n) => ({ name: n.name, ageMs: n.history.ageMs }));
}

function namespacesOf(config: GatewayConfig): Namespaces {
  let ns = cache.get(config);
  if (!ns) {
    ns = createNamespaces(config);
    cache.set(config, ns);
  }
  return ns;
}
