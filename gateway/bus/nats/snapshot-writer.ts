/**
 * When a watched topic's state is written to the KV bucket: after `every` messages (kept below
 * the per-topic history size, so the stream always still holds the tail after the newest
 * snapshot) and once the topic has been idle for `idleMs` (so a topic that goes quiet has a
 * snapshot at its last message before retention ages that message out), and on unwatch/close.
 * One write in flight per topic; a losing compare-and-set adopts the newer snapshot.
 */
import type { Logger } from '../../log.ts';
import type { SnapshotStore } from './snapshots.ts';

export interface SnapshotView {
  readonly seq: number;
  readonly state: unknown;
  readonly epoch: string;
}

export interface SnapshotWriterOptions {
  readonly every: number;
  readonly idleMs: number;
}

export class SnapshotWriter {
  private count = 0;
  private timer: NodeJS.Timeout | undefined;
  private writing: Promise<void> | undefined;
  private again = false;
  private closed = false;
  /** Writes done, for metrics and tests. */
  writes = 0;

  constructor(
    private readonly topic: string,
    private readonly store: SnapshotStore,
    private readonly view: () => SnapshotView,
    private readonly options: SnapshotWriterOptions,
    private readonly log: Logger,
    /** The KV revision and snapshot seq the topic was loaded from. */
    private revision = 0,
    private savedSeq = 0,
    private savedEpoch = '',
  ) {}

  /** Called after every delivered message. */
  delivered(): void {
    if (this.closed) return;
    this.count++;
    if (this.count >= this.options.every) {
      void this.flush();
      return;
    }
    this.arm();
  }

  private arm(): void {
    if (this.timer === undefined) {
      this.timer = setTimeout(() => {
        this.timer = undefined;
        void this.flush();
      }, this.options.idleMs);
      this.timer.unref();
    } else {
      this.timer.refresh();
    }
  }

  /** Writes the current view unless it is already stored; resolves when written (or given up). */
  flush(): Promise<void> {
    if (this.timer !== undefined) {
      clearTimeout(this.timer);
      this.timer = undefined;
    }
    if (this.writing) {
      this.again = true;
      return this.writing;
    }
    this.writing = this.writeLoop().finally(() => {
      this.writing = undefined;
    });
    return this.writing;
  }

  /** The stream was recreated: positions of the old epoch are void. */
  reset(): void {
    this.savedSeq = 0;
    this.savedEpoch = '';
    this.count = 0;
  }

  /** Final write, then no more. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.flush();
  }

  private async writeLoop(): Promise<void> {
    for (let attempt = 0; attempt < 4; attempt++) {
      this.again = false;
      const v = this.view();
      if (v.seq === 0 || (v.epoch === this.savedEpoch && v.seq <= this.savedSeq)) return;
      this.count = 0;
      try {
        const r = await this.store.save(this.topic, { seq: v.seq, epoch: v.epoch, state: v.state, ts: Date.now() }, this.revision);
        if (r.ok) {
          this.revision = r.revision;
          this.savedSeq = v.seq;
          this.savedEpoch = v.epoch;
          this.writes++;
        } else {
          // Another gateway wrote first: keep its snapshot if it is at least as new as ours.
          this.revision = r.current.revision;
          const cur = r.current.record;
          if (cur && cur.epoch === v.epoch && cur.seq >= v.seq) {
            this.savedSeq = cur.seq;
            this.savedEpoch = cur.epoch;
          } else {
            this.again = true;
          }
        }
      } catch (e) {
        this.log.warn('nats bus: snapshot write failed', { topic: this.topic, error: (e as Error).message });
        if (!this.closed) this.arm(); // try again once the idle delay has passed
        return;
      }
      if (!this.again) return;
    }
  }
}
