import type { TopicView } from './topic-view.ts';

/**
 * Exactly once, in order: the applied `n` values of a topic must be 1..count with nothing
 * missing, doubled or reordered, and every applied message must chain to the one before it by
 * `prev` (starting from `firstPrev`). Returns a compact description of what is wrong (empty
 * lists when all is well) so a failure names the culprits instead of dumping thousands of numbers.
 */
export function sequenceProblems(view: TopicView, count: number, allowDuplicateNs: ReadonlySet<number> = new Set(), firstPrev = 0) {
  const ns = view.applied.map((a) => a.n);
  const seen = new Map<number, number>();
  const outOfOrder: string[] = [];
  let high = 0;
  for (let i = 0; i < ns.length; i++) {
    const n = ns[i];
    if (n === undefined) {
      outOfOrder.push(`#${i}: not a numbered message`);
      continue;
    }
    seen.set(n, (seen.get(n) ?? 0) + 1);
    if (n < high) outOfOrder.push(`#${i}: n=${n} after n=${high}`);
    high = Math.max(high, n);
  }
  const missing: number[] = [];
  for (let n = 1; n <= count; n++) if (!seen.has(n)) missing.push(n);
  const duplicated = [...seen].filter(([n, c]) => c > 1 && !allowDuplicateNs.has(n)).map(([n, c]) => `n=${n} x${c}`);
  const extra = [...seen.keys()].filter((n) => n < 1 || n > count).map((n) => `n=${n}`);
  const chain: string[] = [];
  const seqs = new Set<number>();
  let prev = firstPrev;
  for (const a of view.applied) {
    if (a.prev !== prev) chain.push(`seq ${a.seq}: prev ${a.prev}, expected ${prev}`);
    if (seqs.has(a.seq)) chain.push(`seq ${a.seq} applied twice`);
    seqs.add(a.seq);
    prev = a.seq;
  }
  return {
    missing: missing.slice(0, 10),
    duplicated: duplicated.slice(0, 10),
    outOfOrder: outOfOrder.slice(0, 10),
    extra: extra.slice(0, 10),
    chain: chain.slice(0, 10),
    gaps: view.gaps.slice(0, 10),
    badReplays: view.badReplays.slice(0, 10),
    errors: view.errors.slice(0, 5),
  };
}

export const NO_PROBLEMS = { missing: [], duplicated: [], outOfOrder: [], extra: [], chain: [], gaps: [], badReplays: [], errors: [] };
