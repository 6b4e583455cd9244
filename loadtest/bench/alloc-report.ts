/**
 * Where a server allocated, from a V8 sampling heap profile (memory.ts --alloc, or any
 * .heapprofile): bytes by allocating function, each with the call path above it that allocated
 * the most, so a cost can be followed back to the gateway's code from inside a library.
 *
 *   npx tsx loadtest/bench/alloc-report.ts gateway-nats-10000.heapprofile [--top 30] [--depth 6]
 */
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';

interface ProfileNode {
  callFrame: { functionName: string; url: string; lineNumber: number };
  selfSize: number;
  children: ProfileNode[];
}

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: { top: { type: 'string', default: '30' }, depth: { type: 'string', default: '6' } },
});
if (positionals.length !== 1) throw new Error('usage: alloc-report.ts <file.heapprofile> [--top 30] [--depth 6]');
const profile = JSON.parse(readFileSync(positionals[0]!, 'utf8')) as { head: ProfileNode };

const frameName = (n: ProfileNode) => {
  const { functionName, url, lineNumber } = n.callFrame;
  // Paths as the repository and its packages name them.
  const file = url
    .replace(/^file:\/\//, '')
    .replace(/^.*\/node_modules\//, '')
    .replace(`${process.cwd()}/`, '');
  return `${functionName || '(anonymous)'} ${file}:${lineNumber + 1}`;
};

/** Per allocating frame: bytes, and bytes per call path (the frames above it, innermost first). */
const byFrame = new Map<string, { bytes: number; paths: Map<string, number> }>();
let total = 0;
const depth = Number(values.depth);
function walk(n: ProfileNode, stack: string[]): void {
  const name = frameName(n);
  if (n.selfSize > 0) {
    total += n.selfSize;
    const f = byFrame.get(name) ?? { bytes: 0, paths: new Map<string, number>() };
    f.bytes += n.selfSize;
    const path = stack.slice(-depth).reverse().join(' < ');
    f.paths.set(path, (f.paths.get(path) ?? 0) + n.selfSize);
    byFrame.set(name, f);
  }
  stack.push(name);
  for (const c of n.children) walk(c, stack);
  stack.pop();
}
walk(profile.head, []);

const mb = (b: number) => (b / 1024 / 1024).toFixed(2);
console.log(`${mb(total)} MB sampled in all`);
const rows = [...byFrame.entries()].sort((a, b) => b[1].bytes - a[1].bytes).slice(0, Number(values.top));
for (const [name, f] of rows) {
  const [path, bytes] = [...f.paths.entries()].sort((a, b) => b[1] - a[1])[0]!;
  console.log(`${mb(f.bytes).padStart(7)} MB  ${name}\n${' '.repeat(13)}< ${path} (${mb(bytes)} MB)`);
}
