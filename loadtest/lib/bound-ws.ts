/**
 * A RawWs (raw-ws.ts) opened from a chosen local address, for generators that hold more sockets
 * than one address allows. A socket bound to an address before it connects (`localAddress`)
 * takes its port from that address's own ephemeral range (`net.ipv4.ip_local_port_range`, about
 * 28,000 ports by default), so spreading sockets over 127.0.0.0/8 passes 64k connections.
 *
 * Same upgrade and framing as connectRawWs (which has no local-address option); the socket reads
 * through `onread` into one shared buffer, and frames go to the RawWs's parser.
 */
import { createHash, randomBytes } from 'node:crypto';
import net from 'node:net';
import { RawWs, type ConnectOptions } from './raw-ws.ts';

const GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11';
const MAX_RESPONSE_HEAD = 8192;

export interface BoundConnectOptions extends ConnectOptions {
  /** Local address to bind before connecting, e.g. `127.0.1.7`. */
  localAddress?: string;
}

let sharedReadBuffer: Buffer | null = null;

/** Opens a socket from `localAddress`, performs the HTTP upgrade, resolves once the 101 is verified. */
export function connectBoundWs(opts: BoundConnectOptions): Promise<RawWs> {
  const key = randomBytes(16).toString('base64');
  const accept = createHash('sha1')
    .update(key + GUID)
    .digest('base64');
  const readBuffer = opts.readBuffer ?? (sharedReadBuffer ??= Buffer.allocUnsafe(256 * 1024));
  const timeoutMs = opts.timeoutMs ?? 10_000;

  return new Promise<RawWs>((resolve, reject) => {
    let ws: RawWs | null = null;
    let head: Buffer | null = Buffer.alloc(0);
    const fail = (err: Error) => {
      clearTimeout(timer);
      socket.destroy();
      reject(err);
    };
    const onRead = (nread: number, buf: Buffer): boolean => {
      if (ws) {
        try {
          ws.parser.push(buf, 0, nread);
        } catch (e) {
          ws.closeReason = `protocol error: ${(e as Error).message}`;
          ws.destroy();
        }
        return true;
      }
      // Before the upgrade: gather the response head (copied: the read buffer is shared).
      head = Buffer.concat([head!, buf.subarray(0, nread)]);
      const end = head.indexOf('\r\n\r\n');
      if (end < 0) {
        if (head.length > MAX_RESPONSE_HEAD) fail(new Error('upgrade response head too large'));
        return true;
      }
      const err = checkUpgrade(head.subarray(0, end).toString('latin1'), accept, opts.protocol);
      if (err) {
        fail(new Error(err));
        return false;
      }
      clearTimeout(timer);
      const rest = head.subarray(end + 4);
      head = null;
      ws = new RawWs(socket, opts);
      resolve(ws);
      if (rest.length > 0) ws.parser.push(rest);
      return true;
    };

    const socket = net.connect({
      host: opts.host,
      port: opts.port,
      ...(opts.localAddress ? { localAddress: opts.localAddress } : {}),
      onread: { buffer: readBuffer, callback: onRead },
    });
    socket.setNoDelay(true);
    const timer = setTimeout(() => fail(new Error(`upgrade timed out after ${timeoutMs} ms`)), timeoutMs);
    socket.on('connect', () => {
      const lines = [
        `GET ${opts.path} HTTP/1.1`,
        `Host: ${opts.host}:${opts.port}`,
        'Upgrade: websocket',
        'Connection: Upgrade',
        `Sec-WebSocket-Key: ${key}`,
        'Sec-WebSocket-Version: 13',
      ];
      if (opts.protocol) lines.push(`Sec-WebSocket-Protocol: ${opts.protocol}`);
      socket.write(`${lines.join('\r\n')}\r\n\r\n`);
    });
    socket.on('error', (e) => {
      if (!ws) fail(e);
      else ws.closeReason ||= e.message;
    });
    socket.on('close', () => {
      if (!ws) fail(new Error('connection closed during upgrade'));
      else ws.closed = true;
    });
  });
}

/** Checks a 101 response head; returns what is wrong, or null. */
function checkUpgrade(head: string, accept: string, protocol: string | undefined): string | null {
  const [status, ...lines] = head.split('\r\n');
  if (!/^HTTP\/1\.1 101\b/.test(status ?? '')) return `upgrade refused: ${status}`;
  const headers = new Map<string, string>();
  for (const line of lines) {
    const colon = line.indexOf(':');
    if (colon > 0) headers.set(line.slice(0, colon).trim().toLowerCase(), line.slice(colon + 1).trim());
  }
  if (headers.get('sec-websocket-accept') !== accept) return 'bad Sec-WebSocket-Accept';
  const got = headers.get('sec-websocket-protocol');
  if (protocol && got !== protocol) return `server did not accept subprotocol ${protocol} (got ${got ?? 'none'})`;
  if (headers.has('sec-websocket-extensions')) return 'server negotiated an extension we do not support';
  return null;
}
