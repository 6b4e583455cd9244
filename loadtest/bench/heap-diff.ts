/**
 * What grew between two V8 heap snapshots (e.g. memory.ts --snapshots: a server before and after
 * N idle connections), per connection: self size and count by node type and constructor, and for
 * the largest groups, what retains them (the retainer's constructor and the edge's name).
 *
 *   npx tsx loadtest/bench/heap-diff.ts before.heapsnapshot after.heapsnapshot [--per 10000] [--top 40]
 */
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';

interface Snapshot {
  snapshot: { meta: { node_fields: string[]; node_types: [string[], ...unknown[]]; edge_fields: string[]; edge_types: [string[], ...unknown[]] } };
  nodes: number[];
  edges: number[];
  strings: string[];
}

interface Group {
  count: number;
  bytes: number;
  /** Retainer "constructor.edge" -> bytes of this group it retains. */
  retainers: Map<string, number>;
}

function groups(file: string): Map<string, Group> {
  const s = JSON.parse(readFileSync(file, 'utf8')) as Snapshot;
  const { node_fields: nf, node_types: nt, edge_fields: ef, edge_types: et } = s.snapshot.meta;
  const NF = nf.length;
  const EF = ef.length;
  const [typeI, nameI, sizeI, edgeCountI] = ['type', 'name', 'self_size', 'edge_count'].map((f) => nf.indexOf(f));
  const [eTypeI, eNameI, eToI] = ['type', 'name_or_index', 'to_node'].map((f) => ef.indexOf(f));
  const types = nt[0];
  const eTypes = et[0];
  const nodeCount = s.nodes.length / NF;
  const keyOf = (n: number) => {
    const type = types[s.nodes[n * NF + typeI!]!]!;
    const name = s.strings[s.nodes[n * NF + nameI!]!]!;
    // Strings and numbers by type only; objects, closures and the rest by name too.
    if (type === 'string' || type === 'concatenated string' || type === 'sliced string' || type === 'number' || type === 'heap number') return type;
    return `${type}:${name.length > 60 ? `${name.slice(0, 60)}...` : name}`;
  };
  const keys: string[] = new Array(nodeCount);
  const out = new Map<string, Group>();
  for (let n = 0; n < nodeCount; n++) {
    const k = (keys[n] = keyOf(n));
    let g = out.get(k);
    if (!g) out.set(k, (g = { count: 0, bytes: 0, retainers: new Map() }));
    g.count++;
    g.bytes += s.nodes[n * NF + sizeI!]!;
  }
  // Retainers: every strong edge, attributed to the retained node's group.
  let e = 0;
  for (let n = 0; n < nodeCount; n++) {
    const edges = s.nodes[n * NF + edgeCountI!]!;
    for (let i = 0; i < edges; i++, e += EF) {
      const et2 = eTypes[s.edges[e + eTypeI!]!];
      if (et2 === 'weak' || et2 === 'shortcut') continue;
      const to = s.edges[e + eToI!]! / NF;
      const nameOrIndex = s.edges[e + eNameI!]!;
      const edgeName = et2 === 'element' || et2 === 'hidden' ? `[${et2}]` : s.strings[nameOrIndex]!;
      const r = `${keys[n]}.${edgeName}`;
      const g = out.get(keys[to]!)!;
      g.retainers.set(r, (g.retainers.get(r) ?? 0) + s.nodes[to * NF + sizeI!]!);
    }
  }
  return out;
}

const { values: v, positionals } = parseArgs({
  allowPositionals: true,
  options: { per: { type: 'string', default: '1' }, top: { type: 'string', default: '40' } },
});
const [beforeFile, afterFile] = positionals;
if (!beforeFile || !afterFile) throw new Error('usage: heap-diff.ts before.heapsnapshot after.heapsnapshot [--per N] [--top 40]');
const per = Number(v.per);
const before = groups(beforeFile);
const after = groups(afterFile);
const rows = [...after].map(([k, g]) => ({ k, g, bytes: g.bytes - (before.get(k)?.bytes ?? 0), count: g.count - (before.get(k)?.count ?? 0) }));
rows.sort((a, b) => b.bytes - a.bytes);
const total = rows.reduce((s, r) => s + r.bytes, 0);
console.log(`total self size grown: ${(total / per).toFixed(0)} bytes per ${per === 1 ? 'snapshot' : 'connection'}`);
console.log('bytes/conn  count/conn  group  <- top retainers (bytes/conn)');
for (const r of rows.slice(0, Number(v.top))) {
  const prev = before.get(r.k)?.retainers ?? new Map<string, number>();
  const ret = [...r.g.retainers]
    .map(([name, b]) => [name, b - (prev.get(name) ?? 0)] as const)
    .filter(([, b]) => b > 0)
    .sort((a, b) => b[1] - a[1])
    .slice(0, 3)
    .map(([name, b]) => `${name} ${(b / per).toFixed(0)}`)
    .join(', ');
  console.log(`${(r.bytes / per).toFixed(0).padStart(9)}  ${(r.count / per).toFixed(2).padStart(10)}  ${r.k}  <- ${ret}`);
}
