/**
 * The publisher: to the target's publisher WebSocket, or (NATS targets) straight to NATS with
 * JetStream publishes. It runs in a worker thread of the generator (publisher-worker.ts): the main
 * thread's event loop spends long stretches reading thousands of subscriber sockets (a poll phase
 * can take hundreds of milliseconds at 10,000 sockets), and a publisher paced by that loop would
 * fall behind its rate by an amount that depends on the target, skewing the comparison.
 */
import type { JetStreamClient, NatsConnection } from 'nats';
import { sleep } from '../lib/proc.ts';
import type { RawWs } from '../lib/raw-ws.ts';
import type { BenchClient } from './targets/index.ts';

/** The publisher's user-space send queue limit: past it a tick is skipped (the server is not reading). */
const MAX_PUBLISHER_PENDING = 4 * 1024 * 1024;
/** JetStream publishes awaiting their ack at most; past it a tick is skipped (NATS is not keeping up). */
const MAX_NATS_IN_FLIGHT = 1000;

/** Where the publisher's messages go: a WebSocket to the server, or JetStream. */
export interface PublishSink {
  readonly closed: boolean;
  readonly closeCode: number;
  readonly closeReason: string;
  /** Whether no more messages can be taken now (the tick is skipped and counted as a stall). */
  full(): boolean;
  sendMany(batch: Uint8Array[]): void;
  /** Called with a problem report (a frame from the server, a failed publish). */
  onNotice: ((notice: string) => void) | undefined;
  close(): void;
}

/** Publishes as frames on the target's publisher socket; server frames are checked for problem reports. */
export function wsSink(ws: RawWs, client: BenchClient): PublishSink {
  const sink: PublishSink = {
    get closed() {
      return ws.closed;
    },
    get closeCode() {
      return ws.closeCode;
    },
    get closeReason() {
      return ws.closeReason;
    },
    full: () => ws.pendingBytes > MAX_PUBLISHER_PENDING,
    sendMany: (batch) => ws.sendMany(batch, !client.textPublish),
    onNotice: undefined,
    close: () => ws.destroy(),
  };
  ws.onMessage = (payload) => {
    const notice = client.publisherNotice(payload);
    if (notice !== undefined) sink.onNotice?.(notice);
  };
  return sink;
}

/**
 * Publishes with JetStream to `subject` (stored, then RePublished by the stream), asynchronously
 * with at most MAX_NATS_IN_FLIGHT unacknowledged; each carries a message id, as the SDK's and the
 * gateway's publishes do. A failed publish is a notice (and shows as loss).
 */
export function natsSink(nc: NatsConnection, js: JetStreamClient, subject: string): PublishSink {
  let inFlight = 0;
  let n = 0;
  const idBase = `bench-${process.pid}-${Date.now().toString(36)}-`;
  const sink: PublishSink = {
    get closed() {
      return nc.isClosed();
    },
    closeCode: 0,
    get closeReason() {
      return nc.isClosed() ? 'NATS connection closed' : '';
    },
    // Checked before a tick's batch, which may take it past the limit by one batch (<= 200 ms worth).
    full: () => inFlight >= MAX_NATS_IN_FLIGHT,
    sendMany(batch) {
      for (const payload of batch) {
        inFlight++;
        js.publish(subject, payload, { msgID: idBase + n++ }).then(
          () => void inFlight--,
          (e: Error) => {
            inFlight--;
            sink.onNotice?.(`publish failed: ${e.message}`);
          },
        );
      }
    },
    onNotice: undefined,
    close: () => void nc.close(),
  };
  return sink;
}

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

  constructor(
    readonly sink: PublishSink,
    private readonly client: BenchClient,
  ) {
    sink.onNotice = (notice) => {
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
      if (elapsed >= durationMs || this.sink.closed) break;
      const k = Math.min(Math.min(Math.floor((rate * elapsed) / 1000) + 1, total) - sent, maxBurst);
      if (k > 0) {
        if (this.sink.full()) this.stalls++;
        else {
          const now = nowMs();
          const batch: Uint8Array[] = new Array(k);
          for (let j = 0; j < k; j++) batch[j] = this.client.encodePublish(now, this.seq++);
          this.sink.sendMany(batch);
          sent += k;
        }
      }
      await sleep(1);
    }
    return sent;
  }

  report(sent: number): PublisherReport {
    const { sink } = this;
    return {
      sent,
      stalls: this.stalls,
      notices: this.notices,
      noticeCount: this.noticeCount,
      closed: sink.closed,
      closeCode: sink.closeCode,
      closeReason: sink.closeReason,
    };
  }
}
