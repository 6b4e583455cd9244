#!/usr/bin/env node
/**
 * `npm run build`: the gateway as compiled JavaScript for production (containers), so it does
 * not run TypeScript through tsx. One ESM file, `dist/server/main.mjs`, with the project's own
 * code bundled and the npm packages left as imports (production `node_modules` is installed
 * beside it: uWebSockets.js is a native addon and cannot be bundled anyway). The file sits two
 * levels below the root, like gateway/http/static.ts, so the demo's paths resolve the same way.
 * Also builds the SDK bundles (served at /sdk/ when the demo is on).
 */
import { build } from 'esbuild';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { buildSdk } from './build-sdk.mjs';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');

export async function buildGateway(outfile = join(root, 'dist', 'server', 'main.mjs')) {
  await build({
    entryPoints: [join(root, 'gateway', 'main.ts')],
    outfile,
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: 'node20',
    packages: 'external',
    sourcemap: true,
    legalComments: 'none',
    logLevel: 'warning',
  });
  return outfile;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const out = await buildGateway();
  await buildSdk({ quiet: true });
  console.log(`built ${out.slice(root.length + 1)} (node ${out.slice(root.length + 1)} starts the gateway)`);
}
