/**
 * One backend publish over HTTP, as `POST /api/publish` and each entry of `POST
 * /api/publish/batch` do it: the namespace's topic and payload rules (not its client publish
 * mode), the bus publish, and the outcome as an HTTP status with its JSON body.
 */
import { ErrorCode, jsonCodec, type HttpPublishRequest } from '../../protocol/index.ts';
import { isSequenceConflict, isUnsupported } from '../bus/bus.ts';
import { isIdempotencyConflict } from '../bus/idempotency.ts';
import type { GatewayContext } from '../context.ts';
import { checkPayload, topicTooLong } from '../policy/payload.ts';

export interface Outcome {
  readonly status: string;
  readonly body: unknown;
}

const fail = (status: string, code: ErrorCode, message: string, extra: object = {}): Outcome => ({ status, body: { error: { code, message, ...extra } } });

/** `bytes`: the message's size as the sender encoded it (the request body, or the entry's share). */
export async function publishOne(
  ctx: GatewayContext,
  request: HttpPublishRequest,
  bytes: number,
  keyId: string,
  idempotencyKey: string | undefined,
): Promise<Outcome> {
  const { topic, kind, data, expect } = request;
  const ns = ctx.policy.namespaces.of(topic);
  const long = topicTooLong(ns, topic);
  if (long) return fail('400 Bad Request', long.code, long.message);
  const bad = checkPayload(ns, data, bytes, (d) => jsonCodec.encode(d as object));
  if (bad) return fail(bad.code === ErrorCode.PayloadTooLarge ? '413 Payload Too Large' : '422 Unprocessable Entity', bad.code, bad.message);
  // A retry with the same Idempotency-Key (e.g. after a 503 or a lost answer) is stored once.
  // Keys are the sending API key's own (scope: its identity): two backends never collide.
  const options = { ...(idempotencyKey ? { idempotencyKey, idempotencyScope: keyId } : {}), ...(expect === undefined ? {} : { expectedSeq: expect }) };
  const t0 = performance.now();
  try {
    const r = await ctx.bus.publish(topic, kind, data, options);
    ctx.metrics.publishSeconds((performance.now() - t0) / 1000, 'http', true);
    return { status: '200 OK', body: { seq: r.seq, epoch: r.epoch } };
  } catch (e) {
    ctx.metrics.publishSeconds((performance.now() - t0) / 1000, 'http', false);
    // Conditional publish (`expect`): the topic moved on; nothing was stored.
    const message = (e as Error).message;
    if (isSequenceConflict(e)) return fail('409 Conflict', ErrorCode.SequenceConflict, message, { seq: e.current });
    if (isUnsupported(e)) return fail('400 Bad Request', ErrorCode.BadRequest, message);
    if (isIdempotencyConflict(e)) {
      return fail(
        '422 Unprocessable Entity',
        ErrorCode.IdempotencyKeyReused,
        'this Idempotency-Key was already used for a different publish (topic, kind or data): use a new key for a new publish',
      );
    }
    ctx.log.warn('http publish failed', { topic, error: message });
    return fail('503 Service Unavailable', ErrorCode.Unavailable, 'publish failed, retry later');
  }
}
