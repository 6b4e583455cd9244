/**
 * `Bus.request` on NATS: a core request to `<prefix>.<subject>` (RPC: `<prefix>.rpc.<method>`,
 * served by a queue group), with headers. Each request listens on its own inbox (one message)
 * rather than nats.js's shared one, so an abandoned request (its caller disconnected) is
 * unsubscribed and its timer cleared at once instead of living out its timeout. "No responders"
 * is the server's empty 503 status message on the inbox, at once.
 */
import { createInbox, headers as natsHeaders, type Msg, type NatsConnection } from 'nats';
import { BusRequestError, type BusReply } from '../bus.ts';

export function serviceRequest(
  nc: NatsConnection,
  subject: string,
  payload: Uint8Array,
  headers: Readonly<Record<string, string>>,
  timeoutMs: number,
  signal?: AbortSignal,
): Promise<BusReply> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(new BusRequestError('unavailable', 'request abandoned'));
    let timer: ReturnType<typeof setTimeout> | undefined;
    const finish = (outcome: () => void) => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
      if (!sub.isClosed()) sub.unsubscribe();
      outcome();
    };
    const onAbort = () => finish(() => reject(new BusRequestError('unavailable', 'request abandoned')));
    const sub = nc.subscribe(createInbox(), {
      max: 1,
      callback: (err, msg) => {
        if (err) return finish(() => reject(new BusRequestError('unavailable', `request on ${subject} failed: ${err.message}`)));
        if (msg.data.length === 0 && msg.headers?.code === 503)
          return finish(() => reject(new BusRequestError('no_responders', `no service listens on ${subject}`)));
        finish(() => resolve(replyOf(msg)));
      },
    });
    timer = setTimeout(() => finish(() => reject(new BusRequestError('timeout', `no answer on ${subject} within ${timeoutMs} ms`))), timeoutMs);
    signal?.addEventListener('abort', onAbort, { once: true });
    const h = natsHeaders();
    for (const [k, v] of Object.entries(headers)) h.set(k, v);
    try {
      nc.publish(subject, payload, { reply: sub.getSubject(), headers: h });
    } catch (e) {
      finish(() => reject(new BusRequestError('unavailable', `request on ${subject} failed: ${(e as Error).message}`)));
    }
  });
}

function replyOf(msg: Msg): BusReply {
  const answer: Record<string, string> = {};
  if (msg.headers) for (const [k, v] of msg.headers) if (v[0] !== undefined) answer[k.toLowerCase()] = v[0];
  // A service error in the status line only (no Nats-Service-Error header): still a service error.
  if (msg.headers?.hasError && answer['nats-service-error'] === undefined)
    answer['nats-service-error'] = msg.headers.description || `error ${msg.headers.code}`;
  return { payload: msg.data, headers: answer };
}
