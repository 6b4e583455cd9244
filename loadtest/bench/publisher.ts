/**
 * The publisher. It runs in a worker thread of the generator (publisher-worker.ts): the main
 * thread's event loop spends long stretches reading thousands of subscriber sockets (a poll phase
 * can take hundreds of milliseconds at 10,000 sockets), and a publisher paced by that loop would
 * fall behind its rate by an amount that depends on the target, skewing the comparison.
 */
import { sleep } from '../lib/proc.ts';
import type { RawWs } from '../lib/raw-ws.ts';
import type { BenchClient } from './targets/index.ts';

/** The publisher's user-space send queue limit: past it a tick is skipped (the server is not reading). */
const MAX_PUBLISHER_PENDING = 4 * 1024 * 1024;

/**
 * Wall-clock milliseconds with sub-microsecond resolution, the same in every thread of the process
 * (performance.now() alone counts from each thread's own start).
 */
export function nowMs(): number {
  return performance.timeOrigin + performance.now();
}

export interface PublisherReport {
  /** Messages sent by the last run. */
  sent: number;
  /** Ticks skipped, in all, because the server was not reading the publisher's socket fast enough. */
  stalls: number;
  /** Problem reports the server sent to the publisher (first few), and how many in all. */
  notices: string[];
  noticeCount: number;
  closed: boolean;
  closeCode: number;
  closeReason: string;
}

/** Sends publishes at a paced rate; timestamps each one as it goes out. */
export class Publisher {
  private stalls = 0;
  private readonly notices: string[] = [];
  private noticeCount = 0;
  private seq = 0;

  constructor(readonly ws: RawWs, private readonly client: BenchClient) {
    ws.onMessage = (payload) => {
      const notice = client.publisherNotice(payload);
      if (notice === undefined) return;
      this.noticeCount++;
      if (this.notices.length < 5) this.notices.push(notice);
    };
  }

  /** Publishes `rate` messages/s for `durationMs`; resolves with how many were sent. */
  async run(rate: number, durationMs: number): Promise<number> {
    const t0 = performance.now();
    // A late tick catches up, but at most 200 ms worth at once, so a stall is not one huge burst.
    const maxBurst = Math.max(1, Math.ceil(rate * 0.2));
    const total = Math.round((rate * durationMs) / 1000);
    let sent = 0;
    for (;;) {
      const elapsed = performance.now() - t0;
      if (elapsed >= durationMs || this.ws.closed) break;
      const k = Math.min(Math.min(Math.floor((rate * elapsed) / 1000) + 1, total) - sent, maxBurst);
      if (k > 0) {
        if (this.ws.pendingBytes > MAX_PUBLISHER_PENDING) this.stalls++;
        else {
          const now = nowMs();
          const batch: Uint8Array[] = new Array(k);
          for (let j = 0; j < k; j++) batch[j] = this.client.encodePublish(now, this.seq++);
          this.ws.sendMany(batch, true);
          sent += k;
        }
      }
      await sleep(1);
    }
    return sent;
  }

  report(sent: number): PublisherReport {
    const { ws } = this;
    return { sent, stalls: this.stalls, notices: this.notices, noticeCount: this.noticeCount, closed: ws.closed, closeCode: ws.closeCode, closeReason: ws.closeReason };
  }
}
