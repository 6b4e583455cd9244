/**
 * Loads uWebSockets.js and proves the native binding is really in use: the gateway refuses to
 * start otherwise (a JS fallback would silently lose the native fan-out this design rests on).
 */
import { createRequire } from 'node:module';

export type UWS = typeof import('uWebSockets.js');

export function loadUws(): UWS {
  const require = createRequire(import.meta.url);
  let uws: UWS;
  try {
    uws = require('uWebSockets.js') as UWS;
  } catch (e) {
    throw new Error(
      `uWebSockets.js native binding did not load: ${(e as Error).message}\n` +
        'Run `npm ci` (its postinstall patches the binary for glibc < 2.38) on Linux x64 with Node 20-25.',
    );
  }
  const bindingPath = Object.keys(require.cache).find((p) => p.endsWith('.node') && p.includes('uws_'));
  if (typeof uws.App !== 'function' || typeof uws.us_listen_socket_close !== 'function' || !bindingPath) {
    throw new Error('uWebSockets.js loaded without its native binding; refusing to start');
  }
  return uws;
}
