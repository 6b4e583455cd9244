/**
 * `Bus.request` on NATS: a core request to `<prefix>.<subject>` (RPC: `<prefix>.rpc.<method>`,
 * served by a queue group), with headers. nats.js reports "no responders" at once (the server
 * answers 503 when no subscription matches) and times out by itself.
 */
import { ErrorCode as NatsErrorCode, headers as natsHeaders, type NatsConnection, type NatsError } from 'nats';
import { BusRequestError, type BusReply } from '../bus.ts';

export async function serviceRequest(
  nc: NatsConnection,
  subject: string,
  payload: Uint8Array,
  headers: Readonly<Record<string, string>>,
  timeoutMs: number,
): Promise<BusReply> {
  const h = natsHeaders();
  for (const [k, v] of Object.entries(headers)) h.set(k, v);
  try {
    const msg = await nc.request(subject, payload, { timeout: timeoutMs, headers: h });
    const answer: Record<string, string> = {};
    if (msg.headers) for (const [k, v] of msg.headers) if (v[0] !== undefined) answer[k.toLowerCase()] = v[0];
    // A service error (Nats-Service-Error) travels as a header, its code in the status line too.
    if (msg.headers?.hasError && !answer['nats-service-error']) answer['nats-service-error'] = msg.headers.description || `error ${msg.headers.code}`;
    return { payload: msg.data, headers: answer };
  } catch (e) {
    const code = (e as NatsError).code;
    if (code === NatsErrorCode.NoResponders) throw new BusRequestError('no_responders', `no service listens on ${subject}`);
    if (code === NatsErrorCode.Timeout) throw new BusRequestError('timeout', `no answer on ${subject} within ${timeoutMs} ms`);
    throw new BusRequestError('unavailable', `request on ${subject} failed: ${(e as Error).message}`);
  }
}
