/**
 * Peer target: nats-server's own WebSocket listener, subscribers speaking the NATS text protocol
 * over WebSocket (as nats.ws in a browser does). The target starts its own nats-server (no
 * JetStream) with a generated config:
 *
 *   listen: 127.0.0.1:<free port>
 *   websocket { listen: "127.0.0.1:<the target's port>", no_tls: true }
 *
 * Every socket (lib/nats-stream.ts parses the protocol):
 *   -> `CONNECT {"verbose":false,...}`, `SUB <topic> 1` (subscribers), `PING`;  <- `INFO`, `PONG`
 *      (the PONG after the SUB means nats-server has registered it)
 *   <- `MSG <topic> 1 100` + the bare 100-byte payload; `PING` is answered with `PONG`
 * The publisher, on its own WebSocket to the same listener: `PUB <topic> 100` + the payload, a
 * core NATS publish (no JetStream), one per frame.
 *
 * nats-server writes several MSGs into one WebSocket frame under load, so deliveries are counted by
 * parsing the protocol (every `MSG` line is one), on count-only sockets too, not by counting frames.
 * nats-server is the WebSocket server and the broker at once: one process, whose CPU (all its
 * threads: it is a Go program and uses every core it may, see GOMAXPROCS) is the server side.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { assertNatsServerInstalled } from '../../../test/support/nats-server.ts';
import { NatsStream, isNatsLine, natsConnectLine } from '../../lib/nats-stream.ts';
import { freePort, startServer } from '../../lib/proc.ts';
import type { RawWs } from '../../lib/raw-ws.ts';
import { bareClient } from './bare.ts';
import { REPO_ROOT } from './paths.ts';
import type { BenchClient, StartedTarget, Target } from './types.ts';

const BINARY = process.env.NATS_SERVER_BIN ?? 'nats-server';
const HANDSHAKE_TIMEOUT_MS = 10_000;
const CRLF = Buffer.from('\r\n');

/** Sends `lines` (ending with a PING) and waits for the PONG; an -ERR fails. */
async function pingPong(ws: RawWs, lines: string): Promise<void> {
  const reply = ws.waitFor(
    (p, binary) => (isNatsLine(p, binary, 'PONG') || isNatsLine(p, binary, '-ERR') ? p.toString('latin1') : undefined),
    HANDSHAKE_TIMEOUT_MS,
  );
  ws.send(Buffer.from(lines + 'PING\r\n', 'latin1'));
  const r = await reply;
  if (r !== 'PONG') throw new Error(`nats-server refused: ${r}`);
}

export function natsWsClient(topic: string): BenchClient {
  if (/[\s*>]/.test(topic)) throw new Error(`not a plain NATS subject: ${topic}`);
  const bare = bareClient(topic);
  return {
    subscriberPath: '/',
    publisherPath: '/',
    // Counting is the stream's (one per MSG); this only marks a sampled non-bench payload as foreign.
    minCountBytes: 16,
    stream: (ctx) => new NatsStream(ctx),
    // The native sink: the same lines in one binary frame, the PONG awaited; then it counts MSG lines.
    sink: {
      steps: [{ send: Buffer.from(`${natsConnectLine('symphonic-bench-sub')}SUB ${topic} 1\r\nPING\r\n`, 'latin1'), expect: { bytes: 'PONG', at: 'start' } }],
      fail: { bytes: '-ERR', at: 'start' },
      ping: { match: 'PING', reply: Buffer.from('PONG\r\n') },
      stream: 'nats',
    },
    async subscribe(ws) {
      await pingPong(ws, natsConnectLine('symphonic-bench-sub') + `SUB ${topic} 1\r\n`);
    },
    async preparePublisher(ws) {
      await pingPong(ws, natsConnectLine('symphonic-bench-pub'));
    },
    encodePublish(sentAt, seq) {
      const payload = bare.encodePublish(sentAt, seq);
      return Buffer.concat([Buffer.from(`PUB ${topic} ${payload.length}\r\n`, 'latin1'), payload, CRLF]);
    },
    // A MSG's payload, handed over by the stream: the bare layout.
    sentAt: (p) => bare.sentAt(p),
    publisherNotice(p) {
      const s = p.toString('latin1');
      return s.startsWith('INFO ') || s === 'PONG' || s === '+OK' ? undefined : s.slice(0, 120);
    },
  };
}

/** Starts nats-server with a WebSocket listener on `port` (plus a client port, unused), no JetStream. */
async function startNatsWs(port: number): Promise<StartedTarget> {
  assertNatsServerInstalled();
  const dir = mkdtempSync(join(tmpdir(), 'symphonic-natsws-'));
  try {
    const conf = join(dir, 'nats-ws.conf');
    writeFileSync(
      conf,
      ['server_name: symbench_ws', `listen: 127.0.0.1:${await freePort()}`, 'websocket {', `  listen: "127.0.0.1:${port}"`, '  no_tls: true', '}'].join('\n') +
        '\n',
    );
    const s = await startServer({ cmd: BINARY, args: ['-c', conf], cwd: REPO_ROOT, env: {}, port });
    return {
      pid: s.pid,
      child: s.child,
      logTail: () => s.logTail(),
      async stop() {
        try {
          await s.stop();
        } finally {
          rmSync(dir, { recursive: true, force: true });
        }
      },
    };
  } catch (e) {
    rmSync(dir, { recursive: true, force: true });
    throw e;
  }
}

export const natsWsTarget: Target = {
  name: 'nats-ws',
  description: "nats-server's WebSocket listener, core NATS (SUB per socket, PUB over a WebSocket), no JetStream",
  baseline: 'bare',
  peer: true,
  start: startNatsWs,
  client: natsWsClient,
};
