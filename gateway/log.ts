/**
 * Structured logs on pino: one JSON line per event on stdout (`level` as a word, `time` ISO 8601,
 * `node` and whatever the call site adds, e.g. `session`, `topic`), or, with `pretty`, one
 * readable line per event for a human at a terminal.
 *
 * Secrets and payloads stay out by default: call sites never pass them, and as a second line of
 * defence fields named like a secret (token, key, secret, password, authorization, cookie) or a
 * payload (data, payload, state, body) are replaced by "[redacted]" wherever they appear, one
 * level deep. `log.payloads: true` lets the payload fields through (debugging only).
 */
import { Writable } from 'node:stream';
import pino, { type DestinationStream } from 'pino';

export type LogLevel = 'debug' | 'info' | 'warn' | 'error' | 'silent';

export interface Logger {
  debug(msg: string, fields?: Record<string, unknown>): void;
  info(msg: string, fields?: Record<string, unknown>): void;
  warn(msg: string, fields?: Record<string, unknown>): void;
  error(msg: string, fields?: Record<string, unknown>): void;
}

export interface LoggerOptions {
  /** One readable line per event instead of JSON (for a terminal). */
  readonly pretty?: boolean;
  /** Let payload fields (data, payload, state, body) through. */
  readonly payloads?: boolean;
  /** Where the lines go (default stdout). */
  readonly destination?: DestinationStream;
}

const SECRET_FIELDS = ['token', 'key', 'apiKey', 'secret', 'password', 'pass', 'authorization', 'cookie'];
const PAYLOAD_FIELDS = ['data', 'payload', 'state', 'body'];

export function createLogger(level: LogLevel, base: Record<string, unknown> = {}, opts: LoggerOptions = {}): Logger {
  const fields = [...SECRET_FIELDS, ...(opts.payloads ? [] : PAYLOAD_FIELDS)];
  // process.stdout writes synchronously on Linux (files, pipes, terminals): nothing is lost at a crash.
  const destination = opts.destination ?? (opts.pretty ? prettyStream(process.stdout) : process.stdout);
  const p = pino(
    {
      level,
      base,
      messageKey: 'msg',
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
      redact: { paths: [...fields, ...fields.map((f) => `*.${f}`)], censor: '[redacted]' },
    },
    destination,
  );
  // pino's (fields, msg) order, behind the project's (msg, fields) interface.
  return {
    debug: (msg, f) => p.debug(f ?? {}, msg),
    info: (msg, f) => p.info(f ?? {}, msg),
    warn: (msg, f) => p.warn(f ?? {}, msg),
    error: (msg, f) => p.error(f ?? {}, msg),
  };
}

/** `12:00:01.234 WARN  msg  key=value ...` from pino's JSON lines; synchronous, so nothing is lost at exit. */
export function prettyStream(out: NodeJS.WritableStream): DestinationStream {
  return new Writable({
    write(chunk: Buffer, _enc, done) {
      for (const line of chunk.toString('utf8').split('\n')) {
        if (!line) continue;
        try {
          const { time, level, msg, ...rest } = JSON.parse(line) as Record<string, unknown>;
          const clock = typeof time === 'string' ? time.slice(11, 23) : '';
          const extra = Object.entries(rest)
            .map(([k, v]) => `${k}=${typeof v === 'string' ? v : JSON.stringify(v)}`)
            .join(' ');
          out.write(`${clock} ${String(level).toUpperCase().padEnd(5)} ${String(msg)}${extra ? `  ${extra}` : ''}\n`);
        } catch {
          out.write(`${line}\n`);
        }
      }
      done();
    },
  });
}
