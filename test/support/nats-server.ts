/**
 * Test harness: real nats-server processes on loopback, on random free ports, with temporary
 * JetStream store directories. A single node or a JetStream cluster (routes on loopback).
 * Nodes can be stopped (SIGTERM), killed (SIGKILL) and restarted on the same ports and store
 * directory, which is what fault tests need. `cleanup()` stops every process and removes every
 * directory; call it from afterAll. A missing nats-server is an error, never a skip.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { trackChild } from './children.ts';
import { startingService } from './services.ts';

const BINARY = process.env.NATS_SERVER_BIN ?? 'nats-server';
const READY_LINE = 'Server is ready';
const LOG_KEEP = 256 * 1024;
const META_LEADER = /JetStream cluster new metadata leader|Self is new JetStream cluster metadata leader/;

export interface NatsAuth {
  readonly user?: string;
  readonly pass?: string;
  readonly token?: string;
}

export interface NatsNode {
  readonly name: string;
  readonly port: number;
  /** `nats://127.0.0.1:<port>` */
  readonly url: string;
  readonly storeDir: string;
  readonly running: boolean;
  readonly pid: number | undefined;
  /** SIGTERM (graceful) or SIGKILL (crash); resolves once the process has exited. */
  stop(signal?: 'SIGTERM' | 'SIGKILL'): Promise<void>;
  /** SIGKILL: a crash, nothing flushed or announced. */
  kill(): Promise<void>;
  /** Starts the node again with the same ports, config and store directory; resolves when it is ready. */
  restart(): Promise<void>;
  /** The tail of the node's log output, for failure messages. */
  log(): string;
  /** Resolves when the node's log (since its last start) matches `pattern`. */
  waitForLog(pattern: RegExp, timeoutMs?: number): Promise<void>;
}

export interface NatsServer extends NatsNode {
  cleanup(): Promise<void>;
}

export interface NatsCluster {
  readonly nodes: readonly NatsNode[];
  /** Client URLs of every node. */
  readonly urls: readonly string[];
  cleanup(): Promise<void>;
}

export interface StartOptions {
  readonly auth?: NatsAuth;
  /** Extra lines appended to the generated config file. */
  readonly extraConfig?: string;
  readonly readyTimeoutMs?: number;
}

/** Throws a clear, actionable error when nats-server is not installed (tests must fail, not skip). */
export function assertNatsServerInstalled(): string {
  startingService('nats-server');
  const r = spawnSync(BINARY, ['--version'], { encoding: 'utf8' });
  if (r.error || r.status !== 0) {
    throw new Error(
      `nats-server is required for these tests but "${BINARY}" could not be run (${r.error?.message ?? `exit ${r.status}`}). ` +
        'Install it with `apt-get install nats-server` (or set NATS_SERVER_BIN).',
    );
  }
  return r.stdout.trim();
}

/** Distinct free loopback ports (all held open while picking, so they differ from each other). */
export async function freePorts(count: number): Promise<number[]> {
  const servers: Server[] = [];
  try {
    const ports: number[] = [];
    for (let i = 0; i < count; i++) {
      const s = createServer();
      servers.push(s);
      await new Promise<void>((resolve, reject) => {
        s.once('error', reject);
        s.listen(0, '127.0.0.1', () => resolve());
      });
      const addr = s.address();
      if (addr === null || typeof addr === 'string') throw new Error('no port');
      ports.push(addr.port);
    }
    return ports;
  } finally {
    await Promise.all(servers.map((s) => new Promise<void>((r) => s.close(() => r()))));
  }
}

interface NodeSpec {
  name: string;
  port: number;
  clusterPort?: number;
  routes?: number[];
  clusterName?: string;
  storeDir: string;
  configPath: string;
}

function renderConfig(spec: NodeSpec, opts: StartOptions): string {
  const lines = [
    `server_name: ${spec.name}`,
    `listen: 127.0.0.1:${spec.port}`,
    'jetstream {',
    `  store_dir: ${JSON.stringify(spec.storeDir)}`,
    '  max_memory_store: 256MB',
    '  max_file_store: 2GB',
    '}',
  ];
  if (spec.clusterPort !== undefined) {
    lines.push(
      'cluster {',
      `  name: ${spec.clusterName ?? 'symphonic'}`,
      `  listen: 127.0.0.1:${spec.clusterPort}`,
      `  routes: [${(spec.routes ?? []).map((p) => JSON.stringify(`nats://127.0.0.1:${p}`)).join(', ')}]`,
      '}',
    );
  }
  const auth = opts.auth;
  if (auth?.token) lines.push(`authorization { token: ${JSON.stringify(auth.token)} }`);
  else if (auth?.user) lines.push(`authorization { user: ${JSON.stringify(auth.user)}, password: ${JSON.stringify(auth.pass ?? '')} }`);
  if (opts.extraConfig) lines.push(opts.extraConfig);
  return lines.join('\n') + '\n';
}

class Node implements NatsNode {
  private child: ChildProcess | undefined;
  private output = '';
  private exited: Promise<void> = Promise.resolve();
  private readonly logWaiters = new Set<() => void>();

  constructor(
    private readonly spec: NodeSpec,
    private readonly opts: StartOptions,
  ) {
    writeFileSync(spec.configPath, renderConfig(spec, opts));
  }

  get name(): string {
    return this.spec.name;
  }
  get port(): number {
    return this.spec.port;
  }
  get url(): string {
    return `nats://127.0.0.1:${this.spec.port}`;
  }
  get storeDir(): string {
    return this.spec.storeDir;
  }
  get running(): boolean {
    return this.child !== undefined && this.child.exitCode === null && this.child.signalCode === null;
  }
  get pid(): number | undefined {
    return this.child?.pid;
  }
  log(): string {
    return this.output;
  }

  waitForLog(pattern: RegExp, timeoutMs = 15_000): Promise<void> {
    return new Promise((resolve, reject) => {
      const check = () => {
        if (!pattern.test(this.output)) return;
        this.logWaiters.delete(check);
        clearTimeout(timer);
        resolve();
      };
      const timer = setTimeout(() => {
        this.logWaiters.delete(check);
        reject(new Error(`nats-server ${this.name}: no log line matching ${pattern} within ${timeoutMs} ms:\n${this.output}`));
      }, timeoutMs);
      this.logWaiters.add(check);
      check();
    });
  }

  /** Spawns the process and resolves when it logs that it is ready (or rejects with its log). */
  async start(): Promise<void> {
    if (this.running) throw new Error(`nats-server ${this.name} is already running`);
    const child = spawn(BINARY, ['-c', this.spec.configPath], { stdio: ['ignore', 'pipe', 'pipe'] });
    this.child = child;
    trackChild(child);
    this.exited = new Promise((resolve) => child.once('exit', () => resolve()));
    const timeoutMs = this.opts.readyTimeoutMs ?? 15_000;
    await new Promise<void>((resolve, reject) => {
      let settled = false;
      const settle = (err?: Error) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        if (err) reject(err);
        else resolve();
      };
      const onData = (chunk: Buffer) => {
        this.output = (this.output + chunk.toString('utf8')).slice(-LOG_KEEP);
        if (this.output.includes(READY_LINE)) settle();
        for (const w of [...this.logWaiters]) w();
      };
      this.output = '';
      child.stdout?.on('data', onData);
      child.stderr?.on('data', onData);
      child.once('error', (e) => settle(new Error(`nats-server could not start: ${e.message}. Install it with \`apt-get install nats-server\`.`)));
      child.once('exit', (code, signal) => settle(new Error(`nats-server ${this.name} exited (${code ?? signal}) before it was ready:\n${this.output}`)));
      const timer = setTimeout(() => settle(new Error(`nats-server ${this.name} not ready after ${timeoutMs} ms:\n${this.output}`)), timeoutMs);
    });
  }

  async stop(signal: 'SIGTERM' | 'SIGKILL' = 'SIGTERM'): Promise<void> {
    const child = this.child;
    if (!child || !this.running) return;
    child.kill(signal);
    if (signal === 'SIGTERM') {
      // A graceful stop that hangs is escalated rather than waited on forever.
      const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
      await this.exited;
      clearTimeout(timer);
    } else {
      await this.exited;
    }
  }

  kill(): Promise<void> {
    return this.stop('SIGKILL');
  }

  restart(): Promise<void> {
    if (this.running) throw new Error(`nats-server ${this.name} is running; stop it first`);
    return this.start();
  }
}

/** One JetStream node on a free loopback port with its own temporary store directory. */
export async function startNatsServer(opts: StartOptions = {}): Promise<NatsServer> {
  assertNatsServerInstalled();
  const root = mkdtempSync(join(tmpdir(), 'symphonic-nats-'));
  for (let attempt = 1; ; attempt++) {
    const [port] = await freePorts(1);
    const node = new Node({ name: 'n1', port: port!, storeDir: join(root, 'store'), configPath: join(root, 'n1.conf') }, opts);
    try {
      await node.start();
    } catch (e) {
      await node.stop('SIGKILL');
      // Another process may have taken the port between picking and binding: pick again.
      if (attempt < 3 && /address already in use/i.test(String((e as Error).message))) continue;
      rmSync(root, { recursive: true, force: true });
      throw e;
    }
    const server = node as Node & { cleanup(): Promise<void> };
    server.cleanup = async () => {
      await node.stop('SIGKILL');
      rmSync(root, { recursive: true, force: true });
    };
    return server;
  }
}

/** A JetStream cluster of `size` nodes (routes on loopback), each with its own store directory. */
export async function startNatsCluster(size = 3, opts: StartOptions = {}): Promise<NatsCluster> {
  assertNatsServerInstalled();
  // Now and then (about 1 start in 20 here) a fresh 2.9 cluster never elects a metadata leader:
  // every node keeps "waiting for routing". A new cluster on new ports is the cure; bounded.
  const attempts = 3;
  // A healthy start elects its leader within a few seconds; all attempts fit a 60 s test hook.
  const timeouts = [10_000, 10_000, Math.min(opts.readyTimeoutMs ?? 20_000, 20_000)];
  for (let attempt = 1; ; attempt++) {
    try {
      return await startClusterOnce(size, opts, timeouts[attempt - 1]!);
    } catch (e) {
      if (attempt >= attempts) throw e;
      console.warn(`nats cluster start failed (attempt ${attempt} of ${attempts}), starting a new one: ${(e as Error).message.split('\n')[0]}`);
    }
  }
}

async function startClusterOnce(size: number, opts: StartOptions, readyTimeoutMs: number): Promise<NatsCluster> {
  const root = mkdtempSync(join(tmpdir(), 'symphonic-natsc-'));
  const ports = await freePorts(size * 2);
  const clusterPorts = ports.slice(size);
  const nodes = Array.from(
    { length: size },
    (_, i) =>
      new Node(
        {
          name: `n${i + 1}`,
          port: ports[i]!,
          clusterPort: clusterPorts[i]!,
          routes: clusterPorts.filter((_, j) => j !== i),
          clusterName: 'symphonic',
          storeDir: join(root, `n${i + 1}`),
          configPath: join(root, `n${i + 1}.conf`),
        },
        opts,
      ),
  );
  const cleanup = async () => {
    await Promise.all(nodes.map((n) => n.stop('SIGKILL')));
    rmSync(root, { recursive: true, force: true });
  };
  try {
    await Promise.all(nodes.map((n) => n.start()));
    // JetStream answers only once the meta group has a leader; every node says when it knows one.
    await Promise.all(nodes.map((n) => n.waitForLog(META_LEADER, readyTimeoutMs)));
  } catch (e) {
    await cleanup();
    throw e;
  }
  return { nodes, urls: nodes.map((n) => n.url), cleanup };
}
