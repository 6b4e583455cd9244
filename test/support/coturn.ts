/**
 * A real coturn (Debian's `turnserver`) on loopback for TURN tests: `use-auth-secret` with the
 * given shared secret (the TURN REST API scheme the gateway issues credentials for), UDP only,
 * relaying between loopback addresses, a random port, no config file, no database.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { createSocket } from 'node:dgram';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { trackChild } from './children.ts';
import { startingService } from './services.ts';

export const TURNSERVER = '/usr/bin/turnserver';

export interface Coturn {
  readonly port: number;
  /** `turn:127.0.0.1:<port>?transport=udp` */
  readonly url: string;
  stop(): Promise<void>;
}

/** A free UDP-and-TCP port on loopback (TCP probe: coturn binds both). */
async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

export async function startCoturn(secret: string, realm = 'symphonic.test'): Promise<Coturn> {
  startingService('coturn');
  if (!existsSync(TURNSERVER)) throw new Error(`TURN tests need Debian's coturn at ${TURNSERVER}: run \`apt-get install coturn\``);
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), 'symphonic-coturn-'));
  const args = [
    '-n', // no config file
    '--listening-ip=127.0.0.1',
    '--relay-ip=127.0.0.1',
    `--listening-port=${port}`,
    // Relay ports: a group of 6 pages needs 30 allocations, each test file has its own coturn.
    `--min-port=${40000 + (port % 10000)}`,
    `--max-port=${40000 + (port % 10000) + 500}`,
    '--use-auth-secret',
    `--static-auth-secret=${secret}`,
    `--realm=${realm}`,
    '--allow-loopback-peers',
    '--no-tls',
    '--no-dtls',
    '--no-tcp-relay',
    '--no-cli',
    '--no-multicast-peers',
    '--fingerprint',
    `--db=${join(dir, 'turndb')}`,
    `--pidfile=${join(dir, 'turnserver.pid')}`,
    `--log-file=${join(dir, 'turn.log')}`,
    '--simple-log',
    '--verbose',
  ];
  const child: ChildProcess = spawn(TURNSERVER, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  trackChild(child);
  let output = '';
  const onData = (d: Buffer) => {
    output += d.toString();
  };
  child.stdout!.on('data', onData);
  child.stderr!.on('data', onData);
  const exited = new Promise<never>((_, reject) => child.once('exit', (code) => reject(new Error(`coturn exited with ${code}:\n${output.slice(-2000)}`))));
  exited.catch(() => {});
  // Ready once it answers a STUN binding request on its port.
  await Promise.race([stunAnswered(port, 10_000).catch((e: Error) => Promise.reject(new Error(`${e.message}\n${output.slice(-2000)}`))), exited]);
  return {
    port,
    url: `turn:127.0.0.1:${port}?transport=udp`,
    async stop() {
      if (child.exitCode === null) {
        const exited = new Promise((r) => child.once('exit', r));
        child.kill('SIGTERM');
        await exited;
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Sends STUN binding requests (RFC 5389) every 100 ms until one is answered, or `timeoutMs`. */
function stunAnswered(port: number, timeoutMs: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const sock = createSocket('udp4');
    const request = Buffer.alloc(20);
    request.writeUInt16BE(0x0001, 0); // Binding Request
    request.writeUInt32BE(0x2112a442, 4); // magic cookie
    randomBytes(12).copy(request, 8);
    const done = (err?: Error) => {
      clearInterval(ask);
      clearTimeout(timer);
      sock.close();
      if (err) reject(err);
      else resolve();
    };
    sock.on('message', (msg) => msg.length >= 20 && msg.readUInt16BE(0) === 0x0101 && done());
    sock.on('error', () => {}); // ICMP port unreachable before it listens: keep asking
    const send = () => sock.send(request, port, '127.0.0.1');
    const ask = setInterval(send, 100);
    const timer = setTimeout(() => done(new Error(`coturn did not answer STUN on 127.0.0.1:${port} within ${timeoutMs} ms`)), timeoutMs);
    send();
  });
}
