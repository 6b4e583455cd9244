/**
 * RPC to backend services (docs/protocol.md section 17): resolves the method, checks who may
 * call it, and sends the call over the method's transport (HTTP when it has a `url`, else a NATS
 * request when the engine can make one). Never throws for a call: every end is an RpcOutcome.
 */
import { ErrorCode } from '../../protocol/index.ts';
import type { Bus } from '../bus/bus.ts';
import type { GatewayConfig } from '../config.ts';
import { callHttp } from './http-transport.ts';
import { identityHeaders, type Caller } from './identity-headers.ts';
import { methodTable } from './methods.ts';
import { callNats } from './nats-transport.ts';
import { fail, type RpcOutcome } from './outcome.ts';
import { canCall } from './permission.ts';

export interface RpcCall {
  readonly method: string;
  readonly data: unknown;
  /** The client's own limit (ms), if it set one. */
  readonly timeout?: number | undefined;
  /** Aborted when the caller's connection goes: the call is dropped. */
  readonly signal: AbortSignal;
}

export interface Rpc {
  call(caller: Caller, call: RpcCall): Promise<RpcOutcome>;
}

/** Throws (at start-up) on an invalid `rpc.methods` key. */
export function createRpc(config: GatewayConfig, bus: Bus): Rpc {
  const { rpc, nodeId } = config;
  const resolve = methodTable(rpc.methods);
  return {
    async call(caller, { method, data, timeout, signal }) {
      const m = resolve(method);
      if (!m) return fail(ErrorCode.UnknownMethod, `no service is configured for ${method} (rpc.methods)`);
      const allowed = canCall(caller.identity, method, m);
      if (!allowed.ok) return allowed;
      if (hasBinary(data)) return fail(ErrorCode.BadRequest, 'rpc data travels to services as JSON: binary values are not allowed');
      const timeoutMs = Math.min(timeout ?? Number.POSITIVE_INFINITY, m.timeoutMs ?? rpc.timeoutMs);
      const headers = identityHeaders(caller, nodeId);
      if (m.url) return callHttp({ url: m.url, method, data, headers, timeoutMs, maxBytes: rpc.maxReplyBytes, signal });
      if (!bus.request)
        return fail(
          ErrorCode.UnknownMethod,
          `no service is configured for ${method}: set rpc.methods["${m.key}"].url (the ${bus.engine} engine has no NATS services)`,
        );
      return callNats(bus.request.bind(bus), method, data, headers, timeoutMs, rpc.maxReplyBytes, signal);
    },
  };
}

/** Whether `data` holds a binary value (msgpack `bin`), which JSON cannot carry. Depth is bounded by frame validation. */
function hasBinary(v: unknown): boolean {
  if (typeof v !== 'object' || v === null) return false;
  if (v instanceof Uint8Array) return true;
  return (Array.isArray(v) ? v : Object.values(v)).some(hasBinary);
}
