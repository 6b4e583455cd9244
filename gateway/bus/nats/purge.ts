/**
 * Physical age limits per namespace. The stream stores every topic up to the deployment's widest
 * window (window.ts applies narrower ones when reading); a namespace with a shorter age should
 * not keep its messages on disk for longer, so the keeper purges them: per namespace, every
 * message older than its age, by subject filter (`<prefix>.in.<ns>` and `<prefix>.in.<ns>.>`)
 * and stream sequence. JetStream keeps no time index we could ask, so the keeper, which sees every
 * message as it is stored, samples (time, sequence) and purges below the newest sample at least
 * `ageMs` old: a message purged was received before that sample, so it is older than the limit.
 *
 * Not purged, and left to the stream's own max age: a namespace with a namespace nested under it
 * that keeps messages longer (a filter cannot leave the nested one out), and the default
 * namespace (its filter would be every topic). Snapshots stay ahead of the purge: the keeper
 * writes a topic's snapshot once its oldest unwritten change is half the topic's age old, and the
 * purge never goes below a change that no written snapshot holds yet (`floor`).
 */
import type { JetStreamManager } from 'nats';
import type { Logger } from '../../log.ts';

export interface NamespaceAge {
  /** The namespace's name: its topics are `<name>` and `<name>.…`. '' is the default namespace. */
  readonly name: string;
  readonly ageMs: number;
}

export interface PurgeRule {
  readonly namespace: string;
  readonly ageMs: number;
  /** Subject filters, relative to `<prefix>.in.`. */
  readonly topics: readonly string[];
}

/** The namespaces that can be purged by age on their own, given the stream's max age (`Infinity`: none). */
export function purgeRules(namespaces: readonly NamespaceAge[], streamAgeMs: number): PurgeRule[] {
  const rules: PurgeRule[] = [];
  for (const ns of namespaces) {
    if (ns.name === '' || !(ns.ageMs < streamAgeMs)) continue;
    const nested = namespaces.filter((o) => o.name.startsWith(`${ns.name}.`));
    if (nested.some((o) => o.ageMs > ns.ageMs)) continue;
    rules.push({ namespace: ns.name, ageMs: ns.ageMs, topics: [ns.name, `${ns.name}.>`] });
  }
  return rules;
}

/** One (time, sequence) sample per this many ms: the purge lags the limit by at most this. */
const SAMPLE_MS = 100;

export class AgePurger {
  /** Samples, oldest first, from `head` on (the dead prefix is compacted now and then). */
  private readonly at: number[] = [];
  private readonly seq: number[] = [];
  private head = 0;
  private readonly purged = new Map<string, number>();
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private readonly keepMs: number;

  constructor(
    private readonly jsm: JetStreamManager,
    private readonly stream: string,
    private readonly inPrefix: string,
    private readonly rules: readonly PurgeRule[],
    private readonly log: Logger,
    /** The lowest sequence of a namespace that must stay (the keeper's unsnapshotted changes). */
    private readonly floor: (namespace: string) => number = () => Infinity,
    /** Counters to add to (the engine keeps one object across keeper terms). */
    readonly stats = { purges: 0, purged: 0, failures: 0 },
  ) {
    this.keepMs = Math.max(0, ...rules.map((r) => r.ageMs)) + 10 * SAMPLE_MS;
  }

  get enabled(): boolean {
    return this.rules.length > 0;
  }

  start(): void {
    if (!this.enabled || this.timer) return;
    const every = Math.min(30_000, Math.max(500, Math.floor(Math.min(...this.rules.map((r) => r.ageMs)) / 4)));
    this.timer = setInterval(() => {
      this.running ??= this.purgeOnce().finally(() => {
        this.running = undefined;
      });
    }, every);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    await this.running;
  }

  /** A message stored at about `now` (the keeper's live copies arrive in stream order). */
  observe(seq: number, now: number): void {
    if (!this.timer) return;
    const n = this.at.length;
    if (n > this.head && now - this.at[n - 1]! < SAMPLE_MS) return;
    this.at.push(now);
    this.seq.push(seq);
    // Drop old samples but the newest of them: with sparse traffic it is the one a purge needs.
    while (this.head + 1 < this.at.length && now - this.at[this.head + 1]! > this.keepMs) this.head++;
    if (this.head > 1024 && this.head * 2 > this.at.length) {
      this.at.splice(0, this.head);
      this.seq.splice(0, this.head);
      this.head = 0;
    }
  }

  /** The sequence every message below which was received at or before `cutoff` (0: none known). */
  seqBefore(cutoff: number): number {
    let found = 0;
    for (let i = this.head; i < this.at.length && this.at[i]! <= cutoff; i++) found = this.seq[i]!;
    return found;
  }

  /** One pass over the rules (the timer runs it; a pass never overlaps the previous one). */
  async purgeOnce(): Promise<void> {
    const now = Date.now();
    for (const rule of this.rules) {
      const below = Math.min(this.seqBefore(now - rule.ageMs), this.floor(rule.namespace));
      if (below <= (this.purged.get(rule.namespace) ?? 0)) continue;
      try {
        for (const t of rule.topics) {
          const r = await this.jsm.streams.purge(this.stream, { filter: this.inPrefix + t, seq: below });
          this.stats.purged += r.purged;
        }
        this.stats.purges++;
        this.purged.set(rule.namespace, below);
      } catch (e) {
        this.stats.failures++;
        this.log.warn('nats bus: purging a namespace by age failed (retried)', { namespace: rule.namespace, error: (e as Error).message });
      }
    }
  }
}
