#!/usr/bin/env node
/**
 * Builds the SDK bundles into dist/ with esbuild:
 *   dist/symphonic.mjs          ESM, browser + Node (minified)
 *   dist/symphonic.iife.js      single-file browser bundle, global `Symphonic` (minified)
 *   dist/symphonic-peer.mjs     peer channels (WebRTC, relayed by the gateway), an add-on: ESM
 *   dist/symphonic-peer.iife.js  the same for a script tag, global `SymphonicPeer`
 *   dist/symphonic-server.mjs   server-side publisher for Node backends (ESM, self-contained:
 *                               the nats client and msgpackr are bundled in)
 * and prints min and min+gzip sizes. `buildSdk()` is exported for tests.
 *
 * The browser bundles must stay free of zod, msgpackr, the Node-only protocol modules
 * (frames/validate: zod; codec/envelope: msgpackr) and the Node-only NATS kit (nats-kit/, which
 * the server bundle uses); the server bundle only of zod. Neither bundles gateway code.
 */
import { execFileSync } from 'node:child_process';
import { build } from 'esbuild';
import { mkdir } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');

/** Core budget (min+gzip), bytes. */
export const CORE_BUDGET = 12 * 1024;

/**
 * @param {{ outdir?: string, quiet?: boolean }} [options]
 * @returns {Promise<{ outdir: string, files: { name: string, path: string, min: number, gzip: number }[] }>}
 */
export async function buildSdk(options = {}) {
  const outdir = resolve(options.outdir ?? join(root, 'dist'));
  await mkdir(outdir, { recursive: true });
  const common = {
    bundle: true,
    minify: true,
    write: false,
    legalComments: 'none',
    logLevel: 'silent',
    sourcemap: false,
  };
  const BROWSER_FORBIDDEN = /node_modules|protocol\/(frames|validate|codec|envelope)\.ts|(^|\/)(nats-kit|gateway)\//;
  const SERVER_FORBIDDEN = /node_modules\/zod\/|protocol\/(frames|validate)\.ts|(^|\/)gateway\//;
  const targets = [
    { name: 'symphonic.mjs', entry: 'sdk/index.ts', format: 'esm', platform: 'neutral', target: 'es2020', forbidden: BROWSER_FORBIDDEN },
    {
      name: 'symphonic.iife.js',
      entry: 'sdk/index.ts',
      format: 'iife',
      globalName: 'Symphonic',
      platform: 'browser',
      target: 'es2020',
      forbidden: BROWSER_FORBIDDEN,
    },
    // Peer channels: an add-on to the client (new SymphonicPeers(client)), outside the core's budget.
    { name: 'symphonic-peer.mjs', entry: 'sdk/peer/index.ts', format: 'esm', platform: 'neutral', target: 'es2020', forbidden: BROWSER_FORBIDDEN },
    {
      name: 'symphonic-peer.iife.js',
      entry: 'sdk/peer/index.ts',
      format: 'iife',
      globalName: 'SymphonicPeer',
      platform: 'browser',
      target: 'es2020',
      forbidden: BROWSER_FORBIDDEN,
    },
    { name: 'symphonic-server.mjs', entry: 'sdk/server/index.ts', format: 'esm', platform: 'node', target: 'node20', forbidden: SERVER_FORBIDDEN },
  ];
  const files = [];
  for (const t of targets) {
    const path = join(outdir, t.name);
    const result = await build({
      ...common,
      entryPoints: [join(root, t.entry)],
      outfile: path,
      format: t.format,
      platform: t.platform,
      target: t.target,
      ...(t.globalName ? { globalName: t.globalName } : {}),
      write: true,
      metafile: true,
    });
    const inputs = Object.keys(result.metafile.inputs);
    const bad = inputs.filter((p) => t.forbidden.test(p));
    if (bad.length)
      throw new Error(
        `${t.name} must not bundle ${bad.join(', ')} (the browser SDK stays free of zod, msgpackr and Node code, the server SDK of zod, both of the gateway)`,
      );
    const { readFile } = await import('node:fs/promises');
    const bytes = await readFile(path);
    files.push({ name: t.name, path, min: bytes.length, gzip: gzipSync(bytes, { level: 9 }).length, inputs });
  }
  if (!options.quiet) {
    for (const f of files) console.log(`${f.name.padEnd(24)} ${kb(f.min).padStart(9)} min  ${kb(f.gzip).padStart(9)} min+gzip`);
  }
  return { outdir, files };
}

function kb(n) {
  return `${(n / 1024).toFixed(2)} KB`;
}

/** Type declarations for the SDK's public entry points, into dist/types (tsconfig.sdk.json). */
export function buildTypes() {
  execFileSync(process.execPath, [resolve(root, 'node_modules/typescript/bin/tsc'), '-p', resolve(root, 'tsconfig.sdk.json')], { stdio: 'inherit' });
  console.log('types                    dist/types/sdk/index.d.ts, dist/types/sdk/peer/index.d.ts, dist/types/sdk/server/index.d.ts');
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  buildSdk().then(
    ({ files }) => {
      if (!process.argv.includes('--no-types')) buildTypes();
      const core = files.find((f) => f.name === 'symphonic.iife.js');
      if (core && core.gzip > CORE_BUDGET) {
        console.error(`core bundle ${kb(core.gzip)} min+gzip is over the ${kb(CORE_BUDGET)} budget`);
        process.exitCode = 1;
      }
    },
    (err) => {
      console.error(err);
      process.exitCode = 1;
    },
  );
}
