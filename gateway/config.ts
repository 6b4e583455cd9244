/**
 * The one gateway config: zod-validated, defaults that run out of the box. Sources, later wins:
 * defaults < JSON file named by SYMPHONIC_CONFIG < environment. Environment: the conventional
 * PORT and HOST, and SYMPHONIC_<PATH> for any field, path segments joined by "__" in the field
 * names' own case (e.g. SYMPHONIC_ws__maxFrameBytes=131072, SYMPHONIC_api__keys=k1,k2);
 * values are JSON when they parse as JSON, else strings (comma lists for arrays).
 */
import { readFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import { z } from 'zod';

const Ms = z.coerce.number().int().min(1);
const Bytes = z.coerce.number().int().min(64);
const Bool = z.union([z.boolean(), z.enum(['true', 'false', '1', '0']).transform((v) => v === 'true' || v === '1')]);
const List = z.union([z.array(z.string()), z.string().transform((s) => s.split(',').map((x) => x.trim()).filter(Boolean))]);

export const GatewayConfig = z.object({
  host: z.string().default('0.0.0.0'),
  port: z.coerce.number().int().min(0).max(65535).default(9001),
  /** This gateway's name in logs, welcome frames and (with NATS) the session registry. */
  nodeId: z.string().min(1).max(64).default(() => `${hostname()}-${process.pid}-${randomBytes(3).toString("hex")}`),
  bus: z.object({
    engine: z.enum(['memory', 'nats']).default('memory'),
    history: z.object({
      /** Messages kept per topic for resume and history. */
      size: z.coerce.number().int().min(1).max(1_000_000).default(1000),
      ageMs: Ms.default(3_600_000),
    }).prefault({}),
    maxTopics: z.coerce.number().int().min(1).default(100_000),
  }).prefault({}),
  ws: z.object({
    path: z.string().startsWith('/').default('/ws'),
    /** Largest frame a client may send: larger gets error 1003; over twice this the socket is cut. */
    maxFrameBytes: Bytes.default(64 * 1024),
    /** Outbound buffer per socket; past it the client is cut off (4001) and resumes. */
    maxBackpressureBytes: Bytes.default(1024 * 1024),
    idleTimeoutSec: z.coerce.number().int().min(8).max(960).default(120),
    handshakeTimeoutMs: Ms.default(10_000),
    heartbeatMs: Ms.default(25_000),
    maxSubscriptions: z.coerce.number().int().min(1).default(1000),
    /** Invalid frames tolerated per connection before it is closed with 4503. */
    maxErrors: z.coerce.number().int().min(1).default(20),
  }).prefault({}),
  /** Whether clients may publish over the WebSocket (namespaces refine this). */
  clientPublish: Bool.default(true),
  api: z.object({
    /** Bearer keys for the HTTP API; none configured means the API answers 503. */
    keys: List.default([]),
    maxBodyBytes: Bytes.default(256 * 1024),
  }).prefault({}),
  session: z.object({
    /** How long a session outlives its socket, for resume. */
    ttlMs: Ms.default(300_000),
  }).prefault({}),
  /** Serve the demo page at / and the SDK bundle at /sdk/. */
  demo: Bool.default(true),
  log: z.object({ level: z.enum(['debug', 'info', 'warn', 'error', 'silent']).default('info') }).prefault({}),
});
export type GatewayConfig = z.infer<typeof GatewayConfig>;
export type GatewayConfigInput = z.input<typeof GatewayConfig>;

export class ConfigError extends Error {
  override name = 'ConfigError';
}

/** Validates a config object; the error names every offending field. */
export function parseConfig(input: unknown): GatewayConfig {
  const r = GatewayConfig.safeParse(input);
  if (r.success) return r.data;
  const lines = r.error.issues.map((i) => `  ${i.path.join('.') || '(root)'}: ${i.message}`);
  throw new ConfigError(`invalid config:\n${lines.join('\n')}`);
}

export function loadConfig(env: NodeJS.ProcessEnv = process.env): GatewayConfig {
  let fromFile: Record<string, unknown> = {};
  if (env.SYMPHONIC_CONFIG) {
    try {
      fromFile = JSON.parse(readFileSync(env.SYMPHONIC_CONFIG, 'utf8')) as Record<string, unknown>;
    } catch (e) {
      throw new ConfigError(`cannot read config file ${env.SYMPHONIC_CONFIG}: ${(e as Error).message}`);
    }
  }
  return parseConfig(deepMerge(fromFile, configFromEnv(env)));
}

export function configFromEnv(env: NodeJS.ProcessEnv): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  if (env.PORT !== undefined) out.port = env.PORT;
  if (env.HOST !== undefined) out.host = env.HOST;
  for (const [name, raw] of Object.entries(env)) {
    if (!name.startsWith('SYMPHONIC_') || name === 'SYMPHONIC_CONFIG' || raw === undefined) continue;
    const path = name.slice('SYMPHONIC_'.length).split('__');
    let node = out;
    for (const key of path.slice(0, -1)) node = (node[key] ??= {}) as Record<string, unknown>;
    node[path[path.length - 1]!] = jsonOrString(raw);
  }
  return out;
}

function jsonOrString(raw: string): unknown {
  try {
    return JSON.parse(raw);
  } catch {
    return raw;
  }
}

export function deepMerge(a: Record<string, unknown>, b: Record<string, unknown>): Record<string, unknown> {
  const out = { ...a };
  for (const [k, v] of Object.entries(b)) {
    const prev = out[k];
    out[k] = isObject(prev) && isObject(v) ? deepMerge(prev, v) : v;
  }
  return out;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}
