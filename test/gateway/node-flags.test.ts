/**
 * Every way operators start the gateway passes its Node flags (gateway/node-flags.ts): the npm
 * scripts, the container, the two-gateway example. The test and benchmark launchers import them.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { GATEWAY_NODE_FLAGS } from '../../gateway/node-flags.ts';

const ROOT = new URL('../../', import.meta.url);
const read = (path: string) => readFileSync(new URL(path, ROOT), 'utf8');

describe('gateway Node flags', () => {
  const pkg = JSON.parse(read('package.json')) as { scripts: Record<string, string> };
  const cmd = /^CMD (\[.*\])$/m.exec(read('Dockerfile'))?.[1];

  it.each([
    ['npm start', pkg.scripts.start],
    ['npm run start:prod', pkg.scripts['start:prod']],
    ['the container CMD', cmd ? (JSON.parse(cmd) as string[]).join(' ') : undefined],
    ['examples/two-gateways/run.sh', /^\s*node .*gateway\/main\.ts.*$/m.exec(read('examples/two-gateways/run.sh'))?.[0]],
  ])('%s passes them before the entry point', (_, line) => {
    expect(line).toBeDefined();
    const words = line!.trim().split(/\s+/);
    const entry = words.findIndex((w) => /main\.(ts|mjs)$/.test(w));
    expect(entry).toBeGreaterThan(0);
    for (const flag of GATEWAY_NODE_FLAGS) expect(words.slice(0, entry)).toContain(flag);
  });
});
