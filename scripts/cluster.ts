/**
 * `npm run cluster`: a whole deployment on this machine, without Docker: a NATS JetStream cluster
 * (3 nodes), N gateways on the NATS engine (replicas 3) and nginx in front of them (WebSocket
 * upgrade, round robin, no sticky sessions), all on loopback, the demo served through nginx.
 * Prints the URLs and a JSON line `{"ready": ...}` (for scripts and tests), and stops everything
 * on Ctrl-C (SIGINT) or SIGTERM, removing its temporary directory.
 *
 *   npm run cluster                       # 3 gateways, nginx on :9000
 *   npm run cluster -- --gateways 5 --port 8080 --api-key secret
 *
 * Needs `nats-server` and `nginx` on the PATH (Debian: apt-get install nats-server nginx).
 */
import { GATEWAY_NODE_FLAGS } from '../gateway/node-flags.ts';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { renderNginxConfig } from './nginx-config.ts';

const ROOT = resolve(fileURLToPath(new URL('..', import.meta.url)));

interface Options {
  gateways: number;
  port: number;
  apiKey: string;
  prefix: string;
}

function parseArgs(argv: readonly string[]): Options {
  const o: Options = { gateways: 3, port: 9000, apiKey: '', prefix: 'symphonic' };
  for (let i = 0; i < argv.length; i++) {
    const [flag, value] = [argv[i], argv[i + 1]];
    if (flag === '--gateways') o.gateways = Number(value);
    else if (flag === '--port') o.port = Number(value);
    else if (flag === '--api-key') o.apiKey = String(value);
    else if (flag === '--prefix') o.prefix = String(value);
    else throw new Error(`unknown option ${flag}: use --gateways N, --port P (nginx; 0 = any free port), --api-key KEY, --prefix NAME`);
    i++;
  }
  if (!Number.isInteger(o.gateways) || o.gateways < 1 || o.gateways > 16) throw new Error('--gateways must be 1..16');
  if (!Number.isInteger(o.port) || o.port < 0 || o.port > 65535) throw new Error('--port must be 0..65535');
  return o;
}

function need(binary: string, install: string): void {
  const r = spawnSync(binary, ['-v'], { encoding: 'utf8' });
  if (r.error) throw new Error(`${binary} is needed but could not be run (${r.error.message}): ${install}`);
}

async function freePort(): Promise<number> {
  return new Promise((res, rej) => {
    const s = createServer();
    s.once('error', rej);
    s.listen(0, '127.0.0.1', () => {
      const a = s.address();
      s.close(() => (typeof a === 'object' && a ? res(a.port) : rej(new Error('no port'))));
    });
  });
}

/** Resolves with the first output line matching `pattern`; rejects if the process exits first or after `ms`. */
function waitForLine(child: ChildProcess, name: string, pattern: RegExp, ms: number): Promise<RegExpMatchArray> {
  return new Promise((res, rej) => {
    let seen = '';
    const timer = setTimeout(() => done(new Error(`${name}: not ready after ${ms} ms:\n${seen.slice(-2000)}`)), ms);
    const onData = (b: Buffer) => {
      seen += b.toString();
      const m = seen.match(pattern);
      if (m) done(undefined, m);
    };
    const onExit = (code: number | null) => done(new Error(`${name} exited (${code}) before it was ready:\n${seen.slice(-2000)}`));
    function done(err?: Error, m?: RegExpMatchArray) {
      clearTimeout(timer);
      child.stdout?.off('data', onData);
      child.stderr?.off('data', onData);
      child.off('exit', onExit);
      if (err) rej(err);
      else res(m!);
    }
    child.stdout?.on('data', onData);
    child.stderr?.on('data', onData);
    child.once('exit', onExit);
  });
}

async function main(): Promise<void> {
  const o = parseArgs(process.argv.slice(2));
  need('nats-server', 'apt-get install nats-server');
  need('nginx', 'apt-get install nginx');
  const dir = mkdtempSync(join(tmpdir(), 'symphonic-cluster-'));
  const children: { name: string; child: ChildProcess }[] = [];
  let stopping = false;
  const stop = async (code: number) => {
    if (stopping) return;
    stopping = true;
    // Gateways first (they close their sockets with 4000 and hand the keeper lease back), then nginx and NATS.
    const order = [...children].sort((a, b) => Number(b.name.startsWith('gateway')) - Number(a.name.startsWith('gateway')));
    for (const { child } of order) if (child.exitCode === null) child.kill('SIGTERM');
    await Promise.all(
      order.map(({ child }) =>
        child.exitCode !== null
          ? undefined
          : new Promise((r) => {
              const t = setTimeout(() => child.kill('SIGKILL'), 10_000);
              child.once('exit', () => {
                clearTimeout(t);
                r(undefined);
              });
            }),
      ),
    );
    rmSync(dir, { recursive: true, force: true });
    process.exit(code);
  };
  process.once('SIGINT', () => void stop(0));
  process.once('SIGTERM', () => void stop(0));
  const start = (name: string, cmd: string, args: string[], env: Record<string, string> = {}) => {
    const child = spawn(cmd, args, { cwd: ROOT, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    children.push({ name, child });
    child.once('exit', (code, signal) => {
      if (!stopping) {
        console.error(`${name} exited (${code ?? signal}); stopping the cluster`);
        void stop(1);
      }
    });
    return child;
  };

  try {
    // NATS: three JetStream nodes routed to each other.
    const clientPorts = await Promise.all([1, 2, 3].map(freePort));
    const routePorts = await Promise.all([1, 2, 3].map(freePort));
    const natsUrls = clientPorts.map((p) => `nats://127.0.0.1:${p}`);
    const nats = clientPorts.map((port, i) => {
      const conf = join(dir, `n${i + 1}.conf`);
      writeFileSync(
        conf,
        [
          `server_name: n${i + 1}`,
          `listen: 127.0.0.1:${port}`,
          `jetstream { store_dir: ${JSON.stringify(join(dir, `n${i + 1}`))} }`,
          `cluster { name: symphonic, listen: 127.0.0.1:${routePorts[i]}, routes: [${routePorts
            .filter((_, j) => j !== i)
            .map((p) => `"nats://127.0.0.1:${p}"`)
            .join(', ')}] }`,
        ].join('\n'),
      );
      return start(`nats n${i + 1}`, 'nats-server', ['-c', conf]);
    });
    await Promise.all(
      nats.map((c, i) => waitForLine(c, `nats n${i + 1}`, /JetStream cluster new metadata leader|Self is new JetStream cluster metadata leader/, 30_000)),
    );

    // Gateways on the NATS engine.
    const gwPorts = await Promise.all(Array.from({ length: o.gateways }, freePort));
    const gateways = gwPorts.map((port, i) =>
      start(`gateway g${i + 1}`, process.execPath, [...GATEWAY_NODE_FLAGS, '--import', 'tsx', 'gateway/main.ts'], {
        PORT: String(port),
        HOST: '127.0.0.1',
        SYMPHONIC_nodeId: `g${i + 1}`,
        SYMPHONIC_bus__engine: 'nats',
        SYMPHONIC_bus__nats__servers: natsUrls.join(','),
        SYMPHONIC_bus__nats__replicas: '3',
        SYMPHONIC_bus__nats__prefix: o.prefix,
        ...(o.apiKey ? { SYMPHONIC_api__keys: o.apiKey } : {}),
      }),
    );
    await Promise.all(gateways.map((c, i) => waitForLine(c, `gateway g${i + 1}`, /"msg":"listening"/, 60_000)));

    // nginx: round robin over the gateways, WebSocket upgrade passed through.
    const port = o.port || (await freePort());
    const conf = join(dir, 'nginx.conf');
    writeFileSync(conf, renderNginxConfig(dir, port, gwPorts));
    const nginx = start('nginx', 'nginx', ['-c', conf, '-p', dir, '-g', 'daemon off;']);
    await new Promise((r) => setTimeout(r, 0));
    await waitForHttp(`http://127.0.0.1:${port}/healthz`, 10_000, nginx);

    const info = {
      ready: true,
      url: `http://127.0.0.1:${port}/`,
      ws: `ws://127.0.0.1:${port}/ws`,
      gateways: gwPorts.map((p) => `http://127.0.0.1:${p}`),
      nats: natsUrls,
      pids: Object.fromEntries(children.map(({ name, child }) => [name, child.pid])),
    };
    console.log(`Symphonic cluster: ${o.gateways} gateway(s) on a 3-node NATS JetStream cluster, behind nginx
  demo       ${info.url}
  WebSocket  ${info.ws}
  gateways   ${info.gateways.join('  ')}
  NATS       ${natsUrls.join(',')}
Ctrl-C stops everything.`);
    console.log(JSON.stringify(info));
  } catch (e) {
    console.error((e as Error).message);
    await stop(1);
  }
}

async function waitForHttp(url: string, ms: number, child: ChildProcess): Promise<void> {
  const deadline = Date.now() + ms;
  for (let attempt = 0; ; attempt++) {
    if (child.exitCode !== null) throw new Error(`nginx exited (${child.exitCode}) before it answered`);
    try {
      if ((await fetch(url)).ok) return;
    } catch {
      /* not listening yet */
    }
    if (Date.now() > deadline) throw new Error(`${url} did not answer within ${ms} ms`);
    await new Promise((r) => setTimeout(r, Math.min(500, 25 * 2 ** attempt)));
  }
}

await main();
