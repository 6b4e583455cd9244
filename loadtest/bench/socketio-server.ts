/**
 * A peer for the fan-out benchmark: Socket.IO v4 rooms, as an application would use them. Run as
 * its own process:
 *   PORT=9001 HOST=127.0.0.1 node --import tsx loadtest/bench/socketio-server.ts
 *
 * WebSocket transport only (no long-polling, no upgrade), on Node's http server with Socket.IO's
 * default WebSocket engine (`ws`), compression off, default ping (25 s interval, 20 s timeout:
 * the benchmark's client answers pings). Events:
 *
 *   client -> server  `sub` (topic)          joins the room named by the topic; answered `subscribed` (topic)
 *   client -> server  `pub` (topic, data)    `io.to(topic).emit('m', data)`: to every socket in the room
 *
 * Socket.IO has no outbound limit per socket: a subscriber that reads too slowly gets its messages
 * queued in memory (late, not dropped), unlike the uWS servers' 1 MiB backpressure limit.
 */
import { createServer } from 'node:http';
import { Server } from 'socket.io';

const host = process.env.HOST ?? '127.0.0.1';
const port = Number(process.env.PORT ?? 0);
/** Engine.IO ping interval and timeout (Socket.IO's defaults; tests shorten them to check that pings are answered). */
const pingInterval = Number(process.env.PING_INTERVAL_MS ?? 25_000);
const pingTimeout = Number(process.env.PING_TIMEOUT_MS ?? 20_000);

const httpServer = createServer();
const io = new Server(httpServer, {
  transports: ['websocket'],
  serveClient: false,
  perMessageDeflate: false,
  httpCompression: false,
  maxHttpBufferSize: 64 * 1024,
  pingInterval,
  pingTimeout,
});

io.on('connection', (socket) => {
  socket.on('sub', (topic: unknown) => {
    if (typeof topic !== 'string') return;
    void socket.join(topic);
    socket.emit('subscribed', topic);
  });
  socket.on('pub', (topic: unknown, data: unknown) => {
    if (typeof topic === 'string') io.to(topic).emit('m', data);
  });
});

httpServer.once('error', (e) => {
  console.error(JSON.stringify({ msg: 'listen failed', host, port, error: e.message }));
  process.exit(1);
});
httpServer.listen(port, host, () => {
  const addr = httpServer.address();
  console.log(JSON.stringify({ msg: 'listening', host, port: typeof addr === 'object' && addr ? addr.port : port, server: 'socket.io' }));
});

for (const sig of ['SIGTERM', 'SIGINT'] as const) {
  process.on(sig, () => {
    void io.close();
    process.exit(0);
  });
}
