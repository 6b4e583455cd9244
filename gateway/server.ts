/**
 * Assembles one gateway: config -> bus -> uWS app (WebSocket, HTTP API, demo) -> listening.
 * `startGateway` is what main.ts runs and what tests start on port 0.
 */
import type { us_listen_socket } from 'uWebSockets.js';
import { CloseCode, ErrorCode } from '../protocol/index.ts';
import type { Bus, Engine } from './bus/bus.ts';
import { createEngine } from './bus/create.ts';
import { parseConfig, type GatewayConfig, type GatewayConfigInput } from './config.ts';
import type { GatewayContext } from './context.ts';
import { createAdmin } from './admin/admin.ts';
import { mountAdminPage } from './admin/page.ts';
import { mountAdmin } from './admin/routes.ts';
import { createDrain } from './drain.ts';
import { createAliases } from './aliases.ts';
import { createFanout } from './fanout.ts';
import { createMetrics } from './metrics.ts';
import { mountApi } from './http/api.ts';
import { mountPresenceApi } from './http/presence.ts';
import { pending, replyError } from './http/respond.ts';
import { mountStatic } from './http/static.ts';
import { createInterest } from './interest.ts';
import { localPresence } from './bus/memory/presence.ts';
import { createPresence } from './presence/presence.ts';
import { createLogger } from './log.ts';
import { loadUws } from './native.ts';
import type { Connection } from './connection/connection.ts';
import { createPolicy } from './policy/index.ts';
import { createRpc } from './rpc/rpc.ts';
import { mountWebSocket } from './transport/websocket.ts';

export interface RunningGateway {
  readonly config: GatewayConfig;
  readonly port: number;
  /** WebSocket URL on loopback, e.g. ws://127.0.0.1:9001/ws */
  readonly url: string;
  readonly httpUrl: string;
  readonly bus: Bus;
  connections(): number;
  /** Cuts every client socket without a close frame, as a network failure would (for tests). */
  dropAllSockets(): void;
  /**
   * Takes the gateway out of service (docs/deploy.md): readiness false, upgrades refused, clients
   * closed with 4000 in batches over `windowMs` (default `drain.windowMs`); resolves when empty.
   */
  drain(windowMs?: number): Promise<void>;
  /** Resolves when a drain (from drain(), SIGTERM in main.ts, or POST /api/drain) has finished. */
  readonly drained: Promise<void>;
  /** Closes every socket with 4000 (reconnect elsewhere), stops listening, closes the bus. */
  close(): Promise<void>;
}

export async function startGateway(input: GatewayConfigInput = {}, deps: { engine?: Engine } = {}): Promise<RunningGateway> {
  const config = parseConfig(input);
  const startedAt = Date.now();
  const uws = loadUws();
  const log = createLogger(config.log.level, { node: config.nodeId }, { pretty: config.log.pretty, payloads: config.log.payloads });
  // Keys are loaded before anything listens: a bad key fails the start, not the first client.
  const policy = await createPolicy<Connection>(config);
  const { bus, sessions, inbox } = deps.engine ?? (await createEngine(config, log, (status) => log.info('bus status', { status })));
  const app = uws.App();
  const metrics = createMetrics({ node: config.nodeId, engine: bus.engine });
  const aliases = createAliases();
  const fanout = createFanout(app, metrics, log, aliases);
  let sockets: ReturnType<typeof mountWebSocket> | undefined;
  const drain = createDrain(() => sockets?.open ?? new Set(), log);
  await bus.start((m) => fanout.publish(m));
  const presence = createPresence({
    config: config.presence,
    namespaces: policy.namespaces,
    link: bus.presence ?? localPresence(),
    push: (frame) => fanout.presence(frame),
    log,
  });
  metrics.presence(() => presence.stats());
  const ctx: GatewayContext = {
    config,
    bus,
    log,
    metrics,
    policy,
    interest: createInterest(bus),
    sessions,
    inbox,
    drain,
    presence,
    aliases,
    rpc: createRpc(config, bus),
  };
  const mounted = mountWebSocket(uws, app, ctx);
  sockets = mounted;
  metrics.source(
    () => {
      let subscriptions = 0;
      for (const c of mounted.open) subscriptions += c.subs.size;
      return {
        connections: mounted.open.size,
        sessions: ctx.sessions.size(),
        subscriptions,
        topics: ctx.interest.topics(),
        busStatus: bus.status(),
        draining: drain.draining,
      };
    },
    () => [
      ...(bus.figures?.() ?? []),
      // Live direct-message copies this gateway received: only for sessions it holds (never broadcast).
      {
        name: 'inbox_deliveries_total',
        type: 'counter' as const,
        help: 'Live direct-message copies received for sessions held here',
        value: inbox.delivered(),
      },
    ],
  );
  mountApi(app, ctx, () => mounted.open.size);
  mountPresenceApi(app, ctx);
  // The deployment's gateways (heartbeats on NATS), and the admin API and page behind the admin key.
  const admin = createAdmin(ctx, () => mounted.open, startedAt);
  mountAdmin(app, ctx, admin);
  mountAdminPage(app, log);
  if (config.demo) mountStatic(app);
  app.any('/*', (res, req) => replyError(pending(res), '404 Not Found', ErrorCode.NotFound, `no route ${req.getMethod().toUpperCase()} ${req.getUrl()}`));

  const listenSocket = await new Promise<us_listen_socket>((resolve, reject) => {
    app.listen(config.host, config.port, (token) => (token ? resolve(token) : reject(new Error(`cannot listen on ${config.host}:${config.port}`))));
  });
  const port = uws.us_socket_local_port(listenSocket);

  const heartbeat = setInterval(() => fanout.heartbeat(), config.ws.heartbeatMs);
  const maintenance = setInterval(() => {
    const deadline = Date.now() - config.ws.handshakeTimeoutMs;
    for (const conn of mounted.open) {
      // Only sockets that sent no hello: one being answered (a token check, a session store slow in a
      // resume storm) gets its welcome; closing it would send the client back to the end of the queue.
      if (conn.state === 'handshaking' && !conn.authenticating && conn.openedAt < deadline) conn.close(CloseCode.HandshakeTimeout, 'no hello in time');
    }
    ctx.sessions.sweep();
  }, 1000);

  log.info('listening', {
    host: config.host,
    port,
    engine: bus.engine,
    ws: config.ws.path,
    // What is open to whom (never the keys themselves).
    anonymous: config.auth.anonymous,
    tokens: policy.auth.enabled,
    apiKeys: policy.apiKeys.size,
    namespaces: policy.namespaces.all.map((n) => n.name || '(default)'),
  });
  if (config.auth.anonymous && config.clientPublish && config.defaultNamespace.publish === undefined) {
    log.info('open defaults: anonymous clients may subscribe and publish to any topic outside configured namespaces (see docs/security.md to lock down)');
  }
  const host = config.host === '0.0.0.0' || config.host === '::' ? '127.0.0.1' : config.host;
  let closed = false;
  return {
    config,
    port,
    url: `ws://${host}:${port}${config.ws.path}`,
    httpUrl: `http://${host}:${port}`,
    bus,
    connections: () => mounted.open.size,
    drain: (windowMs = config.drain.windowMs) => drain.start(windowMs),
    drained: drain.done,
    dropAllSockets() {
      for (const conn of [...mounted.open]) conn.ws?.close();
    },
    async close() {
      if (closed) return;
      closed = true;
      clearInterval(heartbeat);
      clearInterval(maintenance);
      uws.us_listen_socket_close(listenSocket);
      for (const conn of [...mounted.open]) conn.close(CloseCode.ServerShutdown, 'server shutting down');
      await admin.close();
      presence.close();
      await ctx.sessions.close();
      await inbox.close();
      await bus.close();
      app.close();
      log.info('closed');
    },
  };
}
