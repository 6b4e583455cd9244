/**
 * Publish replies (`ack`, and a publish's `error`) leave once per event-loop turn, all of one
 * connection's in one corked write. They settle in microtasks after a bus read (NATS engine) or
 * a flush (memory engine), outside any uWS callback, so sent one by one each was a write syscall
 * of its own. The protocol lets an `ack` and the publisher's own `msg` arrive in either order.
 */
import type { ServerFrame } from '../../protocol/index.ts';
import type { Connection } from './connection.ts';

const waiting = new Map<Connection, ServerFrame[]>();
let scheduled = false;

export function replySoon(conn: Connection, frame: ServerFrame): void {
  const frames = waiting.get(conn);
  if (frames) frames.push(frame);
  else waiting.set(conn, [frame]);
  if (!scheduled) {
    scheduled = true;
    setImmediate(flush);
  }
}

function flush(): void {
  scheduled = false;
  for (const [conn, frames] of waiting) conn.sendAll(frames);
  waiting.clear();
}
