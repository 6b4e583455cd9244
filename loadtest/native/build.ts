/**
 * Builds the native sink on first use: `cc -O2 sink.c` into loadtest/native/.build/ (ignored by
 * git), one binary per source version (its hash in the name), so an edit rebuilds and parallel
 * runs share the result (written under a temporary name, then renamed).
 */
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const SOURCE = fileURLToPath(new URL('./sink.c', import.meta.url));
const BUILD_DIR = join(dirname(SOURCE), '.build');
const FLAGS = ['-O2', '-std=c11', '-Wall'];

const compiler = (): string => process.env.CC || 'cc';

/** Whether a C compiler answers (`$CC` or `cc`). */
export function haveCompiler(): boolean {
  return spawnSync(compiler(), ['--version'], { stdio: 'ignore' }).status === 0;
}

/** The path of the built sink, compiling it first if this source version was not built yet. */
export function sinkBinary(): string {
  const cc = compiler();
  const hash = createHash('sha1').update(readFileSync(SOURCE)).update(FLAGS.join(' ')).digest('hex').slice(0, 12);
  const bin = join(BUILD_DIR, `sink-${hash}`);
  if (existsSync(bin)) return bin;
  mkdirSync(BUILD_DIR, { recursive: true });
  const tmp = `${bin}.${process.pid}.tmp`;
  const r = spawnSync(cc, [...FLAGS, '-o', tmp, SOURCE], { encoding: 'utf8' });
  if ((r.error as NodeJS.ErrnoException | undefined)?.code === 'ENOENT')
    throw new Error(`no C compiler (${cc}) to build the native sink: install gcc (apt-get install gcc), or run with --generator node`);
  if (r.status !== 0) {
    rmSync(tmp, { force: true });
    const headers = /No such file.*\.h/.test(r.stderr) ? ' (C library headers missing: apt-get install libc6-dev)' : '';
    throw new Error(`building the native sink failed${headers}:\n${r.stderr || r.error?.message}`);
  }
  renameSync(tmp, bin);
  // Binaries of earlier source versions are of no more use.
  for (const f of readdirSync(BUILD_DIR)) if (/^sink-[0-9a-f]{12}$/.test(f) && join(BUILD_DIR, f) !== bin) rmSync(join(BUILD_DIR, f), { force: true });
  return bin;
}
