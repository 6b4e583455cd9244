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
import { SCOPES } from './policy/api-keys.ts';
import { JsonSchemaConfig } from './policy/schema.ts';
import { patternError } from './policy/patterns.ts';

const Ms = z.coerce.number().int().min(1);
const Bytes = z.coerce.number().int().min(64);
const Bool = z.union([z.boolean(), z.enum(['true', 'false', '1', '0']).transform((v) => v === 'true' || v === '1')]);
const List = z.union([
  z.array(z.string()),
  z.string().transform((s) =>
    s
      .split(',')
      .map((x) => x.trim())
      .filter(Boolean),
  ),
]);
/** A rate in events per second; 0 switches the limit off. */
const Rate = z.coerce.number().min(0);
const Count = z.coerce.number().int().min(0);
const NAME_RE = /^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$/;

/** One namespace's policy; every field left out falls back to `defaultNamespace` (docs/security.md). */
const NamespaceConfig = z
  .object({
    /** Who may subscribe (and read history): anyone, authenticated connections, or token holders only. */
    subscribe: z.enum(['anyone', 'authenticated', 'token']).optional(),
    /** Who may publish from a client: nobody (server only: HTTP API, bus), token `pubs` holders, authenticated, anyone. */
    publish: z.enum(['server', 'token', 'authenticated', 'anyone']).optional(),
    /** Retention per topic (exposed to the bus engines through policy/namespaces.ts historyFor). */
    history: z
      .object({ size: z.coerce.number().int().min(1).max(1_000_000).optional(), ageMs: Ms.optional() })
      .strict()
      .optional(),
    /** Presence on this namespace's topics (docs/protocol.md section 15): true/"members" (lists), "count" (counts only), false (off). */
    presence: z
      .union([z.enum(['members', 'count']), Bool])
      .transform((v) => (v === true ? 'members' : v))
      .optional(),
    /** Largest `data` a publish may carry, bytes as encoded by the publisher. */
    maxPayloadBytes: z.coerce.number().int().min(1).optional(),
    maxTopicLength: z.coerce.number().int().min(1).max(200).optional(),
    /** `<ns>.<user id>.…`: only that user (its `sub` or one of its `channels`) may subscribe. */
    personal: Bool.optional(),
    /** JSON Schema subset checked on every publish (policy/schema.ts). */
    schema: JsonSchemaConfig.optional(),
  })
  .strict();

const ApiKey = z.union([
  z.string().min(1),
  z.object({ key: z.string().min(1), scopes: z.array(z.enum(SCOPES)).min(1).optional(), name: z.string().max(64).optional() }).strict(),
]);

export const GatewayConfig = z.object({
  host: z.string().default('0.0.0.0'),
  port: z.coerce.number().int().min(0).max(65535).default(9001),
  /** This gateway's name in logs, welcome frames and (with NATS) the session registry. */
  nodeId: z
    .string()
    .min(1)
    .max(64)
    .default(() => `${hostname()}-${process.pid}-${randomBytes(3).toString('hex')}`),
  bus: z
    .object({
      engine: z.enum(['memory', 'nats']).default('memory'),
      history: z
        .object({
          /** Messages kept per topic for resume and history. */
          size: z.coerce.number().int().min(1).max(1_000_000).default(1000),
          ageMs: Ms.default(3_600_000),
        })
        .prefault({}),
      maxTopics: z.coerce.number().int().min(1).default(100_000),
      /** The NATS engine (bus.engine = "nats"): JetStream stream, KV snapshots and sessions. */
      nats: z
        .object({
          /** One or more server URLs; the client fails over between them. */
          servers: List.default(['nats://127.0.0.1:4222']),
          user: z.string().optional(),
          pass: z.string().optional(),
          token: z.string().optional(),
          /** A NATS .creds file (JWT + nkey seed). */
          credsFile: z.string().optional(),
          /** Names this deployment's stream, buckets and subjects, so deployments can share a NATS. */
          prefix: z
            .string()
            .regex(/^[A-Za-z0-9_-]{1,32}$/)
            .default('symphonic'),
          /** Stream and KV replicas: 1 on a single node, 3 in a cluster. */
          replicas: z.coerce.number().int().min(1).max(5).default(1),
          /**
           * Whether this gateway may become the deployment's state keeper (one at a time, by lease),
           * which reads every message of the deployment to keep topic snapshots. Turn it off on edge
           * gateways when a dedicated gateway (or a few) should carry that load.
           */
          keeper: Bool.default(true),
          /**
           * A read of the stream or a bucket (resume, history, session resume, a topic's first load)
           * is retried through NATS leader elections and reconnects until this, then answered 5001.
           */
          readTimeoutMs: Ms.default(15_000),
          /** A publish is retried through leader elections and reconnects until this, then answered 5001. */
          publishTimeoutMs: Ms.default(15_000),
        })
        .prefault({}),
    })
    .prefault({}),
  ws: z
    .object({
      path: z.string().startsWith('/').default('/ws'),
      /** Largest frame a client may send: larger gets error 1003; over twice this the socket is cut. */
      maxFrameBytes: Bytes.default(64 * 1024),
      /** Outbound buffer per socket; past it the client is cut off (4001) and resumes. */
      maxBackpressureBytes: Bytes.default(1024 * 1024),
      idleTimeoutSec: z.coerce.number().int().min(8).max(960).default(120),
      handshakeTimeoutMs: Ms.default(10_000),
      heartbeatMs: Ms.default(25_000),
      maxSubscriptions: z.coerce.number().int().min(1).default(1000),
      /** Invalid frames (and denied requests) tolerated per connection before it is closed with 4503. */
      maxErrors: z.coerce.number().int().min(1).default(20),
      /** Origins allowed to open a WebSocket (exact, `https://*.example.com`, or `*`); empty: any. */
      allowedOrigins: List.default([]),
      /** Refuse upgrades without an Origin header (non-browser clients) too. */
      requireOrigin: Bool.default(false),
    })
    .prefault({}),
  auth: z
    .object({
      /** Connections without a token are allowed (as anonymous). Set false to require a token. */
      anonymous: Bool.default(true),
      /** HS256/384/512 shared secrets (at least 32 characters); several for rotation. */
      secrets: z.array(z.string().min(32, 'HMAC secrets must be at least 32 characters')).default([]),
      /** Same as `secrets`, one secret (convenient as SYMPHONIC_auth__secret). */
      secret: z.string().min(32, 'HMAC secrets must be at least 32 characters').optional(),
      /** PEM public keys (SPKI), inline or as file paths: RS*, PS*, ES*, EdDSA by key type. */
      publicKeys: List.default([]),
      /** Path of a JWKS file (keys selected by `kid`/`alg`). */
      jwksFile: z.string().optional(),
      algorithms: z
        .array(z.enum(['HS256', 'HS384', 'HS512', 'RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'EdDSA', 'Ed25519']))
        .min(1)
        .default(['HS256', 'RS256', 'ES256']),
      /** Required `iss` / `aud` claims, when set. */
      issuer: z.string().optional(),
      audience: z.string().optional(),
      /** Leeway for `exp`/`nbf` against clock skew; also how late after `exp` the connection is closed. */
      clockToleranceSec: z.coerce.number().int().min(0).max(300).default(5),
    })
    .prefault({}),
  limits: z
    .object({
      /** Longest topic name accepted (the protocol's own ceiling is 200). */
      maxTopicLength: z.coerce.number().int().min(1).max(200).default(200),
      /** Frames per second per connection (token bucket); 0 = off. Past it: error 4000; keep at it: close 4006. */
      connRatePerSec: Rate.default(100),
      connBurst: z.coerce.number().int().min(1).default(200),
      /** Frames per second per user, shared by the user's connections on this gateway; 0 = off. */
      userRatePerSec: Rate.default(200),
      userBurst: z.coerce.number().int().min(1).default(400),
      /** Rate-limited frames tolerated (refilling at one per second) before the connection is closed with 4006. */
      maxRateViolations: z.coerce.number().int().min(1).default(50),
      /** Open connections per user on this gateway (0 = unlimited): past it, error 4004 and close 4007 at hello. */
      maxConnectionsPerUser: Count.default(100),
      /** Open connections per client IP (0 = unlimited): past it the upgrade gets HTTP 429. Off by default: behind a proxy every client shares its IP. */
      maxConnectionsPerIp: Count.default(0),
      /** Take the client IP from this request header (e.g. x-forwarded-for, last entry) instead of the socket; only behind a trusted proxy. */
      clientIpHeader: z.string().toLowerCase().default(''),
    })
    .prefault({}),
  /** Policy of topics in no configured namespace, and the fallback of every namespace field. */
  defaultNamespace: NamespaceConfig.prefault({}),
  /** Namespace name (a topic prefix of whole tokens, e.g. "chat") -> policy. */
  namespaces: z.record(z.string().regex(NAME_RE, 'a namespace name is dot-separated tokens of [A-Za-z0-9_-]'), NamespaceConfig).default({}),
  /** Whether clients may publish over the WebSocket (namespaces refine this). */
  clientPublish: Bool.default(true),
  api: z
    .object({
      /**
       * Bearer keys for the HTTP API; none configured means the API answers 503. A string is a
       * publish-scoped key; `{key, scopes: ["publish", "admin"], name}` sets scopes (and a name for logs).
       */
      keys: z
        .union([
          z.array(ApiKey),
          z.string().transform((s) =>
            s
              .split(',')
              .map((x) => x.trim())
              .filter(Boolean),
          ),
        ])
        .default([]),
      maxBodyBytes: Bytes.default(256 * 1024),
    })
    .prefault({}),
  session: z
    .object({
      /** How long a session outlives its socket, for resume. */
      ttlMs: Ms.default(300_000),
      /** Largest app-defined session state (`session` frame), as JSON. */
      maxStateBytes: Bytes.default(4096),
    })
    .prefault({}),
  /** Presence (docs/protocol.md section 15); namespaces turn it on. */
  presence: z
    .object({
      /** Changes are batched: at most one presence frame per topic per interval, to clients and between gateways. */
      intervalMs: z.coerce.number().int().min(10).max(10_000).default(250),
      /** A member whose socket went away stays this long, so a session that resumes (on any gateway) does not leave and join again. */
      graceMs: z.coerce.number().int().min(0).max(600_000).default(5000),
      /** Past this many members a topic's subscribers get counts instead of lists. */
      maxMembers: z.coerce.number().int().min(1).default(1000),
      /** Largest `info` a member may show (`hello.info` or the token's `info` claim), as JSON. */
      maxInfoBytes: z.coerce.number().int().min(2).max(65_536).default(512),
    })
    .prefault({}),
  /** Direct messages to a session or a user (docs/protocol.md section 16). */
  direct: z
    .object({
      /** Which clients may send (`send` frame): backends always may (HTTP API, server publisher). */
      clients: z.enum(['none', 'authenticated', 'anyone']).default('authenticated'),
      /** Largest `data` of a direct message, bytes as encoded by the sender. */
      maxBytes: z.coerce
        .number()
        .int()
        .min(1)
        .default(64 * 1024),
      /** Messages a session's inbox keeps for a resume (its TTL bounds their age). */
      inboxSize: z.coerce.number().int().min(1).max(100_000).default(1000),
    })
    .prefault({}),
  /**
   * Peer-channel signalling (SDK peer channels, docs/sdk.md): direct messages whose data is
   * `{"$peer": …}` (offers, answers, ICE candidates, relayed channel messages), checked apart from
   * other direct messages.
   */
  peer: z
    .object({
      /** `present`: a client may signal only to sessions present in a presence topic it is subscribed to; `anyone`: any session. */
      reach: z.enum(['present', 'anyone']).default('present'),
      /** Largest signal, bytes as encoded by the sender (an SDP offer is 2-6 KB; relayed messages are bounded by this too). */
      maxSignalBytes: z.coerce
        .number()
        .int()
        .min(256)
        .default(16 * 1024),
      /** Signals per second per connection (0: no limit beyond the connection's frame rate), and the burst. */
      ratePerSec: z.coerce.number().min(0).default(200),
      burst: z.coerce.number().int().min(1).default(400),
    })
    .prefault({}),
  /** RPC to backend services (docs/protocol.md section 17). */
  rpc: z
    .object({
      /** Default wait for an answer; a method may set its own, a call may ask for less. */
      timeoutMs: z.coerce.number().int().min(1).max(300_000).default(5000),
      /** Largest answer passed back to the client, as JSON. */
      maxReplyBytes: Bytes.default(64 * 1024),
      /** Token claims forwarded to services in the `Symphonic-Claims` header (JSON). */
      claims: List.default([]),
      /**
       * Method name or pattern (`orders.*`, `billing.>`) -> where the service is and who may call.
       * Without `url` the call is a NATS request to `<prefix>.rpc.<method>` (NATS engine only).
       */
      methods: z
        .record(
          z
            .string()
            .max(128)
            .refine((k) => patternError(k) === null, { message: 'a method name or pattern: dot-separated tokens of [A-Za-z0-9_-], "*", or a final ">"' }),
          z
            .object({
              url: z.string().url().optional(),
              allow: z.enum(['anyone', 'authenticated', 'token']).default('authenticated'),
              timeoutMs: z.coerce.number().int().min(1).max(300_000).optional(),
            })
            .strict(),
        )
        .default({}),
    })
    .prefault({}),
  /** STUN/TURN servers handed to clients for peer connections (`ice` frame, docs/protocol.md). */
  ice: z
    .object({
      /** Servers given to every client as they are, e.g. STUN: `[{"urls": ["stun:stun.example.com:3478"]}]`. */
      servers: z.array(z.object({ urls: z.union([z.string().transform((u) => [u]), z.array(z.string()).min(1)]) }).strict()).default([]),
      /** A TURN server run with coturn's `use-auth-secret`: clients get credentials valid for `ttlSec`. */
      turn: z
        .object({
          urls: List.default([]),
          /** coturn's `static-auth-secret`. Never sent to clients. */
          secret: z.string().min(16, 'a TURN secret must be at least 16 characters').optional(),
          ttlSec: z.coerce
            .number()
            .int()
            .min(60)
            .max(7 * 86_400)
            .default(3600),
          /** Who gets TURN credentials: authenticated connections only (a relay costs bandwidth), or anyone. */
          clients: z.enum(['authenticated', 'anyone']).default('authenticated'),
        })
        .strict()
        .prefault({}),
    })
    .prefault({}),
  cluster: z
    .object({
      /**
       * How often this gateway samples its message rates and (NATS engine) announces itself to the
       * other gateways on `<prefix>.gateways.hb` (admin API, GET /api/admin/cluster). A gateway not
       * heard from for 3 of its intervals drops out of the others' view.
       */
      heartbeatMs: z.coerce.number().int().min(100).max(60_000).default(2000),
    })
    .prefault({}),
  /** Serve the demo page at / and the SDK bundle at /sdk/. */
  demo: Bool.default(true),
  drain: z
    .object({
      /**
       * SIGTERM or POST /api/drain: clients are moved to other gateways over this window (closed
       * with 4000 in batches over its first 80%), then the gateway exits. Keep Kubernetes'
       * terminationGracePeriodSeconds above it.
       */
      windowMs: Ms.default(20_000),
    })
    .prefault({}),
  log: z
    .object({
      level: z.enum(['debug', 'info', 'warn', 'error', 'silent']).default('info'),
      /** One readable line per event instead of JSON; default: when stdout is a terminal. */
      pretty: Bool.default(Boolean(process.stdout.isTTY)),
      /** Let message payloads and session state into the logs (debugging only; off: "[redacted]"). */
      payloads: Bool.default(false),
    })
    .prefault({}),
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
