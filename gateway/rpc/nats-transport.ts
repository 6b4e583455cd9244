/**
 * The NATS service transport (NATS engine): a request to `<prefix>.rpc.<method>` through the
 * bus, the data as JSON, the identity headers. An answer with `Nats-Service-Error` is 2012 (its
 * text the message, the payload the data); no responders 5003; no answer in time 5002.
 */
import { ErrorCode } from '../../protocol/index.ts';
import { BusRequestError, type Bus } from '../bus/bus.ts';
import { fail, parseAnswer, type RpcOutcome } from './outcome.ts';

export async function callNats(
  request: NonNullable<Bus['request']>,
  method: string,
  data: unknown,
  headers: Readonly<Record<string, string>>,
  timeoutMs: number,
  maxBytes: number,
  signal: AbortSignal,
): Promise<RpcOutcome> {
  try {
    const reply = await request(`rpc.${method}`, new TextEncoder().encode(JSON.stringify(data)), headers, timeoutMs, signal);
    if (reply.payload.length > maxBytes) return fail(ErrorCode.ReplyTooLarge, `the service's answer is larger than ${maxBytes} bytes`);
    const serviceError = reply.headers['nats-service-error'];
    if (serviceError !== undefined) {
      const parsed = parseAnswer(reply.payload);
      return fail(ErrorCode.ServiceError, serviceError || 'service error', parsed.ok && parsed.data !== null ? parsed.data : undefined);
    }
    return parseAnswer(reply.payload);
  } catch (e) {
    if (!(e instanceof BusRequestError)) throw e;
    if (e.reason === 'no_responders') return fail(ErrorCode.NoResponders, `${method}: no instance of the service is running`);
    if (e.reason === 'timeout') return fail(ErrorCode.ServiceTimeout, `${method}: no answer within ${timeoutMs} ms`);
    if (signal.aborted) return fail(ErrorCode.Internal, 'call abandoned');
    return fail(ErrorCode.Unavailable, `${method}: the bus is not available, retry later`);
  }
}
