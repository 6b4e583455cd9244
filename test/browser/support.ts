/**
 * Real Debian Chromium through playwright-core (never a downloaded browser), and the SDK bundle
 * built into dist/ (which the gateway serves at /sdk/) when it is missing or older than sdk/.
 */
import { existsSync, readdirSync, statSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium, type Browser } from 'playwright-core';
import { buildSdk } from '../../scripts/build-sdk.mjs';
import { startingService } from '../support/services.ts';

const ROOT = resolve(fileURLToPath(new URL('../..', import.meta.url)));
export const CHROMIUM = '/usr/bin/chromium';

/** `extraArgs`: e.g. the WebRTC flags the peer tests need (peer.browser.test.ts). */
export async function launchChromium(extraArgs: readonly string[] = []): Promise<Browser> {
  startingService('Chromium');
  if (!existsSync(CHROMIUM)) {
    throw new Error(`browser tests need Debian's Chromium at ${CHROMIUM}: run \`apt-get install chromium\` (the tests never download a browser)`);
  }
  // launch() gives every browser a fresh temporary user-data-dir, removed on close.
  return chromium.launch({
    executablePath: CHROMIUM,
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      ...extraArgs,
    ],
  });
}

/** Builds dist/ when the browser bundle is missing or older than any sdk/ or protocol/ source. */
export async function ensureBundle(): Promise<string> {
  const bundle = join(ROOT, 'dist', 'symphonic.iife.js');
  const newest = Math.max(...['sdk', 'protocol'].flatMap((d) => sources(join(ROOT, d))));
  if (!existsSync(bundle) || statSync(bundle).mtimeMs < newest) await buildSdk({ quiet: true });
  return bundle;
}

function sources(dir: string): number[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? sources(join(dir, e.name)) : e.name.endsWith('.ts') ? [statSync(join(dir, e.name)).mtimeMs] : [],
  );
}

/**
 * Serves one HTML page from loopback (a page Playwright fulfils itself counts as a public origin,
 * and Chromium's local-network checks then block its WebSocket to 127.0.0.1). `url` is the page
 * at `path`; `close` stops serving.
 */
export async function servePage(html: string, path = '/page.html'): Promise<{ url: string; close(): Promise<void> }> {
  const server = createServer((_, res) => res.writeHead(200, { 'content-type': 'text/html' }).end(html));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}${path}`,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
