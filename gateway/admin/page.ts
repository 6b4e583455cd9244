/**
 * `GET /admin`: the admin UI (index.html beside this file), one self-contained page (inline CSS
 * and JS, no external resources). Served whatever `demo` is set to: it holds nothing secret and
 * everything it shows comes from /api/admin/..., which needs an admin key. Its inline script and
 * style are allowed by hash in a strict Content-Security-Policy, and it may not be framed (its
 * buttons drain gateways and disconnect users).
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { HttpResponse, TemplatedApp } from 'uWebSockets.js';
import { ErrorCode } from '../../protocol/index.ts';
import type { Logger } from '../log.ts';
import { pending, replyError } from '../http/respond.ts';

// Two levels below the root, in the source tree and in the production build (dist/server/).
const FILE = join(fileURLToPath(new URL('../..', import.meta.url)), 'gateway', 'admin', 'index.html');

const hashes = (html: string, tag: 'script' | 'style') =>
  [...html.matchAll(new RegExp(`<${tag}>([\\s\\S]*?)</${tag}>`, 'g'))].map((m) => `'sha256-${createHash('sha256').update(m[1]!).digest('base64')}'`).join(' ');

export function adminPageHeaders(html: string): Record<string, string> {
  return {
    'content-type': 'text/html; charset=utf-8',
    'content-security-policy': [
      "default-src 'none'",
      `script-src ${hashes(html, 'script')}`,
      `style-src ${hashes(html, 'style')}`,
      "connect-src 'self'",
      "img-src 'self' data:",
      "base-uri 'none'",
      "form-action 'none'",
      "frame-ancestors 'none'",
    ].join('; '),
    'x-frame-options': 'DENY',
    'x-content-type-options': 'nosniff',
    'referrer-policy': 'no-referrer',
    'cache-control': 'no-store',
  };
}

export function mountAdminPage(app: TemplatedApp, log: Logger): void {
  let html: string | undefined;
  try {
    html = readFileSync(FILE, 'utf8');
  } catch (e) {
    log.warn('admin page not found: GET /admin answers 404', { file: FILE, error: (e as Error).message });
  }
  const headers = html === undefined ? {} : adminPageHeaders(html);
  const serve = (res: HttpResponse) => {
    const p = pending(res);
    if (html === undefined) return replyError(p, '404 Not Found', ErrorCode.NotFound, 'the admin page is not installed (gateway/admin/index.html)');
    p.aborted = true;
    res.cork(() => {
      res.writeStatus('200 OK');
      for (const [k, v] of Object.entries(headers)) res.writeHeader(k, v);
      res.end(html);
    });
  };
  app.get('/admin', serve);
  app.get('/admin/', serve);
}
