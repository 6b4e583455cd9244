import { GATEWAY_NODE_FLAGS } from '../../../gateway/node-flags.ts';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The repository root (loadtest/bench/targets/ is three levels down). */
export const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');

/**
 * How to run a TypeScript entry point as its own Node process: node itself is the child (not npx),
 * so /proc/<pid>/stat of the child is the server's CPU and nothing else.
 */
export function nodeTs(entry: string): { cmd: string; args: string[] } {
  const preloads = preload ? ['--import', preload] : [];
  // Every Node server, the baselines too, runs with the gateway's production flags: one runtime for all.
  return { cmd: process.execPath, args: [...GATEWAY_NODE_FLAGS, ...serverNodeArgs(), '--import', 'tsx', ...preloads, root ? resolve(root, entry) : entry] };
}

/**
 * BENCH_SERVER_NODE_ARGS: extra Node flags for the servers only, e.g. "--cpu-prof --cpu-prof-dir=/tmp/prof"
 * (NODE_OPTIONS refuses --cpu-prof, and would profile the generator too).
 */
export function serverNodeArgs(): string[] {
  return process.env.BENCH_SERVER_NODE_ARGS?.split(' ').filter(Boolean) ?? [];
}

let preload: string | undefined;
let root: string | undefined;

/**
 * Another checkout of the repository whose entry points servers started through `nodeTs` run,
 * from now on (undefined: this one). The memory benchmark compares a tree with this one this way.
 */
export function setServerRoot(dir: string | undefined): void {
  root = dir;
}

/**
 * A module every server started through `nodeTs` loads before its entry point, from now on
 * (undefined: none). The memory benchmark preloads its probe (memory-probe.ts) this way.
 */
export function setServerPreload(module: string | undefined): void {
  preload = module;
}

/** The one topic of the fan-out benchmark (the relay serves only it). */
export const BENCH_TOPIC = 'bench.fanout';
