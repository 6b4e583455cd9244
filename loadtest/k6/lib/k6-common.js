/**
 * What every Symphonic k6 scenario shares: options from environment variables, thresholds that
 * the environment can override, per-VU identities (HS256 tokens signed in the script), the HTTP
 * API publisher, and a summary that prints p99 and writes a JSON artifact.
 *
 * k6 v1.3.0 and later (`k6/experimental/websockets`; k6 >= 1.4 also accepts it).
 */
import crypto from 'k6/crypto';
import encoding from 'k6/encoding';
import http from 'k6/http';

export const URL = __ENV.SYMPHONIC_URL || 'ws://127.0.0.1:9001/ws';
export const HTTP_URL = __ENV.HTTP_URL || URL.replace(/^ws/, 'http').replace(/\/ws\/?$/, '');

/** A number from the environment, or `fallback`; anything else stops the test with a clear message. */
export function envNumber(name, fallback) {
  const raw = __ENV[name];
  if (raw === undefined || raw === '') return fallback;
  const v = Number(raw);
  if (!Number.isFinite(v) || v < 0) throw new Error(`${name} must be a non-negative number, got ${JSON.stringify(raw)}`);
  return v;
}

/**
 * Default thresholds, each replaceable by the environment: THRESHOLDS='{"metric": ["p(99)<250"]}'
 * (JSON: metric -> list of expressions; an empty list removes the metric's thresholds).
 */
export function thresholds(defaults) {
  const out = Object.assign({}, defaults);
  if (__ENV.THRESHOLDS) {
    let over;
    try {
      over = JSON.parse(__ENV.THRESHOLDS);
    } catch (e) {
      throw new Error(`THRESHOLDS must be JSON like {"symphonic_delivered":["rate>=0.999"]}: ${e}`);
    }
    for (const k of Object.keys(over)) {
      if (Array.isArray(over[k]) && over[k].length === 0) delete out[k];
      else out[k] = over[k];
    }
  }
  return out;
}

const b64url = (bytesOrText) => encoding.b64encode(bytesOrText, 'rawurl');

/**
 * The identity of a VU: a token for user `<prefix>-<vu>` signed with JWT_SECRET (HS256, the
 * gateway's `auth.secret`), or TOKEN as given, or none (anonymous). Each VU its own user, so the
 * gateway's per-user connection limit (`limits.maxConnectionsPerUser`, default 100) is not hit by
 * one token shared by every VU.
 */
export function tokenFor(prefix, vu) {
  const secret = __ENV.JWT_SECRET;
  if (!secret) return __ENV.TOKEN || undefined;
  const now = Math.floor(Date.now() / 1000);
  const header = b64url(JSON.stringify({ alg: 'HS256', typ: 'JWT' }));
  const claims = { sub: `${prefix}-${vu}`, iat: now, exp: now + envNumber('TOKEN_TTL_S', 3600) };
  if (__ENV.JWT_SUBS) claims.subs = __ENV.JWT_SUBS.split(',');
  if (__ENV.JWT_PUBS) claims.pubs = __ENV.JWT_PUBS.split(',');
  const body = b64url(JSON.stringify(claims));
  const sig = crypto.hmac('sha256', secret, `${header}.${body}`, 'binary');
  return `${header}.${body}.${b64url(sig)}`;
}

/** `POST /api/publish` with API_KEY; the answer's seq, or 0 and the failure counted by the caller. */
export function httpPublish(topic, kind, data, idempotencyKey) {
  const headers = { Authorization: `Bearer ${__ENV.API_KEY}`, 'Content-Type': 'application/json' };
  if (idempotencyKey) headers['Idempotency-Key'] = idempotencyKey;
  const r = http.post(`${HTTP_URL}/api/publish`, JSON.stringify({ topic, kind, data }), { headers, tags: { name: 'publish' } });
  if (r.status !== 200) return { seq: 0, status: r.status };
  return { seq: JSON.parse(r.body).seq, status: 200 };
}

/** Trend columns in the end-of-test summary: p99 included. */
export const SUMMARY_TREND_STATS = ['avg', 'min', 'med', 'p(90)', 'p(95)', 'p(99)', 'max'];

function fmt(v) {
  return typeof v === 'number' ? (Number.isInteger(v) ? String(v) : v.toFixed(2)) : String(v);
}

/**
 * handleSummary: a short text summary (every metric, trends with p99, thresholds passed or
 * failed) on stdout, and the whole k6 summary as JSON in SUMMARY_JSON (default
 * `<scenario>-summary.json`), for CI artifacts.
 */
export function summary(scenario) {
  return (data) => {
    const lines = [`symphonic ${scenario}: ${data.state && data.state.testRunDurationMs ? (data.state.testRunDurationMs / 1000).toFixed(1) : '?'} s`];
    const names = Object.keys(data.metrics).sort();
    for (const name of names) {
      const m = data.metrics[name];
      const v = m.values;
      let text;
      if (m.type === 'trend') text = SUMMARY_TREND_STATS.map((s) => `${s}=${fmt(v[s])}`).join(' ');
      else if (m.type === 'rate') text = `${(v.rate * 100).toFixed(2)}% (${v.passes} of ${v.passes + v.fails})`;
      else if (m.type === 'counter') text = `${fmt(v.count)} (${fmt(v.rate)}/s)`;
      else
        text = Object.keys(v)
          .map((k) => `${k}=${fmt(v[k])}`)
          .join(' ');
      const th = m.thresholds
        ? Object.keys(m.thresholds)
            .map((t) => `${m.thresholds[t].ok ? 'ok' : 'FAILED'} ${t}`)
            .join(', ')
        : '';
      lines.push(`  ${name.padEnd(34)} ${text}${th ? `   [${th}]` : ''}`);
    }
    const out = { stdout: `${lines.join('\n')}\n` };
    out[__ENV.SUMMARY_JSON || `${scenario}-summary.json`] = JSON.stringify(data, null, 2);
    return out;
  };
}
