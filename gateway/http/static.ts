/** Serves the demo page (gateway/demo/) at `/` and the SDK browser bundles (dist/) at `/sdk/`. */
import { readFileSync, existsSync } from 'node:fs';
import { extname, join, normalize } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { TemplatedApp } from 'uWebSockets.js';
import { ErrorCode } from '../../protocol/index.ts';
import { pending, replyError } from './respond.ts';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.map': 'application/json',
  '.svg': 'image/svg+xml',
  '.ico': 'image/x-icon',
};

export function mountStatic(app: TemplatedApp): void {
  serveDir(app, '/sdk/', join(ROOT, 'dist'));
  serveDir(app, '/', join(ROOT, 'gateway', 'demo'), 'index.html');
}

function serveDir(app: TemplatedApp, prefix: string, dir: string, index?: string): void {
  app.get(`${prefix}*`, (res, req) => {
    const rel = req.getUrl().slice(prefix.length) || index || '';
    const file = normalize(join(dir, rel));
    const p = pending(res);
    if (!file.startsWith(dir) || !rel || !existsSync(file)) {
      return replyError(p, '404 Not Found', ErrorCode.NotFound, `no such file: ${req.getUrl()}`);
    }
    const body = readFileSync(file);
    p.aborted = true;
    res.cork(() => {
      res
        .writeStatus('200 OK')
        .writeHeader('content-type', TYPES[extname(file)] ?? 'application/octet-stream')
        .writeHeader('cache-control', 'no-cache')
        .end(body);
    });
  });
}
