/**
 * A best-effort leader lease in a KV bucket, for the one gateway of a deployment that keeps topic
 * state (keeper.ts). nats-server 2.9 has no per-key TTL, so liveness is "the holder keeps
 * bumping the key's revision": a challenger takes over (compare-and-set on the revision it saw)
 * once that revision has not moved for `ttlMs` by its own clock - no clock sync needed.
 *
 * Two holders at once (a partitioned old holder) are harmless by design: every snapshot write is
 * a compare-and-set that never replaces a newer snapshot, so the lease only avoids double work.
 */
import type { KV } from 'nats';
import type { Logger } from '../../log.ts';

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

  /** First attempt now (so a lone gateway holds the lease when start() returns), then every ttl/3. */
  async start(): Promise<void> {
    await this.tick();
    this.schedule();
  }

  /** Gives the lease up at once (a clean shutdown hands over without waiting for the ttl). */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    await this.ticking;
    if (this.held) {
      this.held = false;
      await this.kv.delete(this.key, { previousSeq: this.revision }).catch(() => {});
    }
  }

  private schedule(): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => {
      void this.tick().finally(() => this.schedule());
    }, Math.max(50, Math.floor(this.ttlMs / 3)));
    this.timer.unref();
  }

  private tick(): Promise<void> {
    this.ticking = this.attempt().catch((e: Error) => {
      this.log.debug('nats bus: lease check failed', { key: this.key, error: e.message });
      // Unable to renew within the ttl: someone else may take over, so stop acting as holder.
      if (this.held && this.seen && Date.now() - this.seen.since > this.ttlMs) this.lose();
    });
    return this.ticking;
  }

  private async attempt(): Promise<void> {
    if (this.stopped) return;
    const value = new TextEncoder().encode(JSON.stringify({ owner: this.owner, at: Date.now() }));
    if (this.held) {
      try {
        this.revision = await this.kv.update(this.key, value, this.revision);
        this.seen = { revision: this.revision, since: Date.now() };
        this.events.renewed?.();
      } catch (e) {
        if (isConflict(e)) this.lose();
        else throw e;
      }
      return;
    }
    const e = await this.kv.get(this.key);
    if (!e || e.operation !== 'PUT') {
      try {
        this.revision = await this.kv.create(this.key, value);
        this.win();
      } catch (err) {
        if (!isConflict(err)) throw err;
      }
      return;
    }
    const now = Date.now();
    if (!this.seen || this.seen.revision !== e.revision) {
      this.seen = { revision: e.revision, since: now };
      return;
    }
    if (now - this.seen.since < this.ttlMs) return;
    try {
      this.revision = await this.kv.update(this.key, value, e.revision);
      this.log.info('nats bus: took over a stale lease', { key: this.key });
      this.win();
    } catch (err) {
      if (!isConflict(err)) throw err;
    }
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

function isConflict(e: unknown): boolean {
  const err = e as { api_error?: { err_code?: number }; message?: string };
  return err?.api_error?.err_code === 10071 || /wrong last sequence|key exists/i.test(err?.message ?? '');
}
