/**
 * A best-effort leader lease in a KV bucket, for the one gateway of a deployment that keeps topic
 * state (keeper.ts). nats-server 2.9 has no per-key TTL, so liveness is "the holder keeps
 * bumping the key's revision": a challenger takes over (compare-and-set on the revision it saw)
 * once that revision has not moved for `ttlMs` by its own clock - no clock sync needed.
 *
 * Two holders at once (a partitioned old holder) are harmless by design: every snapshot write is
 * a compare-and-set that never replaces a newer snapshot, so the lease only avoids double work.
 *
 * Every KV request waits a short time (ttl/3, kept within 250 ms..2 s) instead of the client's
 * 5 s: a request the bucket leaves unanswered (a new bucket's stream before its first leader
 * election, or any election) must not hold start() or outlast the ttl; the check is asked again.
 * A request given up on may still have been applied: the value names its owner, so a write of
 * ours found later is recognised as ours and adopted (compare-and-set on its revision), never
 * taken for a challenger's.
 */
import type { KV, KvEntry } from 'nats';
import type { Logger } from '../../log.ts';
import { pause } from '../../../nats-kit/backoff.ts';
import { isTimeout, withTimeout } from './requests.ts';

/** start() waits at most this long (and at most the ttl) for the bucket to answer a first time. */
const START_WAIT_MS = 5_000;
const FIRST_REQUEST_MS = 250;
const MAX_REQUEST_MS = 2_000;

export interface LeaseEvents {
  acquired(): void;
  lost(): void;
  /** Called after each successful renewal. */
  renewed?(): void;
}

export class Lease {
  private timer: NodeJS.Timeout | undefined;
  private held = false;
  private revision = 0;
  private seen: { revision: number; since: number } | undefined;
  private stopped = false;
  private ticking: Promise<void> | undefined;

  constructor(
    private readonly kv: KV,
    private readonly key: string,
    private readonly owner: string,
    private readonly ttlMs: number,
    private readonly events: LeaseEvents,
    private readonly log: Logger,
  ) {}

  get holder(): boolean {
    return this.held;
  }

  /**
   * First check now, repeated until the bucket answers (so a lone gateway holds the lease when
   * start() returns, and one of gateways starting together does), at most min(ttl, 5 s); then
   * every ttl/3.
   */
  async start(): Promise<void> {
    const deadline = Date.now() + Math.min(this.ttlMs, START_WAIT_MS);
    for (let attempt = 0; !this.stopped; attempt++) {
      const left = deadline - Date.now();
      // Short first (an answer soon after a leader is elected), longer when the bucket is just slow.
      const timeout = Math.min(this.requestMs, FIRST_REQUEST_MS * 2 ** Math.min(attempt, 10));
      const error = await this.tick(Math.max(Math.min(timeout, left), 50));
      if (!error) break;
      if (Date.now() >= deadline) {
        this.log.warn('nats bus: keeper lease not checked yet, retrying in the background', { key: this.key, error: error.message });
        break;
      }
      // A refusal (no leader, 503) came at once: pace the retries. A timeout already waited.
      if (!isTimeout(error)) await pause(Math.min(deadline - Date.now(), 50 * 2 ** Math.min(attempt, 3)));
    }
    this.schedule();
  }

  /** Gives the lease up at once (a clean shutdown hands over without waiting for the ttl). */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    await this.ticking;
    if (this.held) {
      this.held = false;
      await withTimeout(this.kv.delete(this.key, { previousSeq: this.revision }), this.requestMs, 'lease release').catch(() => {});
    }
  }

  /** The timeout of one KV request, once started: a renewal must not outlast the ttl. */
  private get requestMs(): number {
    return Math.max(FIRST_REQUEST_MS, Math.min(MAX_REQUEST_MS, Math.floor(this.ttlMs / 3)));
  }

  private schedule(): void {
    if (this.stopped) return;
    this.timer = setTimeout(
      () => {
        void this.tick().finally(() => this.schedule());
      },
      Math.max(50, Math.floor(this.ttlMs / 3)),
    );
    this.timer.unref();
  }

  /** One check; resolves with the error when the bucket did not answer it (never rejects). */
  private tick(timeoutMs = this.requestMs): Promise<Error | undefined> {
    const ticking = this.attempt(timeoutMs).then(
      () => undefined,
      (e: Error) => {
        this.log.debug('nats bus: lease check failed', { key: this.key, error: e.message });
        // Unable to renew within the ttl: someone else may take over, so stop acting as holder.
        if (this.held && this.seen && Date.now() - this.seen.since > this.ttlMs) this.lose();
        return e;
      },
    );
    this.ticking = ticking.then(() => {});
    return ticking;
  }

  private async attempt(timeoutMs: number): Promise<void> {
    if (this.stopped) return;
    const kv = this.kv;
    const ask = <T>(what: string, request: () => Promise<T>) => withTimeout(request(), timeoutMs, `lease ${what}`);
    const value = () => new TextEncoder().encode(JSON.stringify({ owner: this.owner, at: Date.now() }));
    /** Ours: a write whose answer we stopped waiting for, or a lease we gave up that nobody took. */
    const adopt = async (ours: KvEntry) => {
      try {
        this.revision = await ask('update', () => kv.update(this.key, value(), ours.revision));
        this.win();
      } catch (err) {
        if (!isConflict(err)) throw err;
      }
    };
    if (this.held) {
      try {
        this.renewedAt(await ask('renewal', () => kv.update(this.key, value(), this.revision)));
      } catch (e) {
        if (!isConflict(e)) throw e;
        // Written since our last renewal: by a challenger, or by a renewal of ours answered too late.
        const current = await ask('read', () => kv.get(this.key));
        if (!current || current.operation !== 'PUT' || ownerOf(current) !== this.owner) return this.lose();
        try {
          this.renewedAt(await ask('renewal', () => kv.update(this.key, value(), current.revision)));
        } catch (err) {
          if (isConflict(err)) this.lose();
          else throw err;
        }
      }
      return;
    }
    const e = await ask('read', () => kv.get(this.key));
    if (!e || e.operation !== 'PUT') {
      try {
        this.revision = await ask('create', () => kv.create(this.key, value()));
        this.win();
      } catch (err) {
        if (!isConflict(err)) throw err;
        // Created first by someone else - or by a create of ours answered too late.
        const now = await ask('read', () => kv.get(this.key));
        if (now?.operation === 'PUT' && ownerOf(now) === this.owner) await adopt(now);
      }
      return;
    }
    if (ownerOf(e) === this.owner) return adopt(e);
    const now = Date.now();
    if (!this.seen || this.seen.revision !== e.revision) {
      this.seen = { revision: e.revision, since: now };
      return;
    }
    if (now - this.seen.since < this.ttlMs) return;
    try {
      this.revision = await ask('takeover', () => kv.update(this.key, value(), e.revision));
      this.log.info('nats bus: took over a stale lease', { key: this.key });
      this.win();
    } catch (err) {
      if (!isConflict(err)) throw err;
    }
  }

  private renewedAt(revision: number): void {
    this.revision = revision;
    this.seen = { revision, since: Date.now() };
    this.events.renewed?.();
  }

  private win(): void {
    this.held = true;
    this.seen = { revision: this.revision, since: Date.now() };
    this.events.acquired();
  }

  private lose(): void {
    if (!this.held) return;
    this.held = false;
    this.seen = undefined;
    this.events.lost();
  }
}

/** The owner named in a lease value ('' when unreadable). */
function ownerOf(e: KvEntry): string {
  try {
    const v = JSON.parse(new TextDecoder().decode(e.value)) as { owner?: unknown };
    return typeof v?.owner === 'string' ? v.owner : '';
  } catch {
    return '';
  }
}

function isConflict(e: unknown): boolean {
  const err = e as { api_error?: { err_code?: number }; message?: string };
  return err?.api_error?.err_code === 10071 || /wrong last sequence|key exists/i.test(err?.message ?? '');
}
