/**
 * Request/reply bookkeeping: request ids, timeouts, and the queue of requests made while the
 * connection is not up yet. No socket knowledge: it sends through the function it is given.
 */
import { ClientErrorCode, SymphonicError, TimeoutError } from './errors.ts';

interface InFlight {
  reply(frame: { t: string }): void;
  fail(err: SymphonicError): void;
  timer: ReturnType<typeof setTimeout>;
}

interface Queued {
  go(): void;
  fail(err: SymphonicError): void;
  timer: ReturnType<typeof setTimeout>;
}

const MAX_ID = 2 ** 31 - 1;

export class Requests {
  private nextId = 1;
  private readonly inFlight = new Map<number, InFlight>();
  private queue: Queued[] = [];

  constructor(
    private readonly send: (frame: object) => boolean,
    private readonly maxQueued: number,
  ) {}

  /** Sends now (the connection must be up); exactly one callback runs: reply, error frame, timeout or drop. */
  call(frame: object, timeout: number, reply: (frame: { t: string }) => void, fail: (err: SymphonicError) => void): void {
    let id = this.nextId;
    while (this.inFlight.has(id)) id = id >= MAX_ID ? 1 : id + 1;
    this.nextId = id >= MAX_ID ? 1 : id + 1;
    const timer = setTimeout(() => {
      if (this.inFlight.delete(id))
        fail(new TimeoutError(`no reply to ${(frame as { t: string }).t} within ${timeout} ms`, (frame as { topic?: string }).topic));
    }, timeout);
    this.inFlight.set(id, { reply, fail, timer });
    try {
      this.send({ ...frame, id });
    } catch (e) {
      this.take(id);
      fail(e instanceof SymphonicError ? e : new SymphonicError(ClientErrorCode.ConnectionClosed, String(e)));
    }
  }

  /** Promise form: sends now when `connected`, else queues until flush(); the timeout covers the wait too. */
  request<F>(frame: object, timeout: number, connected: boolean): Promise<F> {
    return new Promise<F>((resolve, reject) => {
      const reply = resolve as (frame: { t: string }) => void;
      if (connected) return this.call(frame, timeout, reply, reject);
      if (this.queue.length >= this.maxQueued) {
        return reject(new SymphonicError(ClientErrorCode.QueueFull, `${this.maxQueued} requests already wait for the connection`));
      }
      const deadline = Date.now() + timeout;
      const entry: Queued = {
        go: () => this.call(frame, Math.max(deadline - Date.now(), 1), reply, reject),
        fail: reject,
        timer: setTimeout(() => {
          this.queue = this.queue.filter((q) => q !== entry);
          reject(new TimeoutError(`not connected within ${timeout} ms to send ${(frame as { t: string }).t}`, (frame as { topic?: string }).topic));
        }, timeout),
      };
      this.queue.push(entry);
    });
  }

  /** A reply frame arrived; false when no request waits for this id (late or unknown). */
  reply(id: number, frame: { t: string }): boolean {
    const p = this.take(id);
    if (p) p.reply(frame);
    return p !== undefined;
  }

  /** An error frame answered a request. */
  fail(id: number, err: SymphonicError): boolean {
    const p = this.take(id);
    if (p) p.fail(err);
    return p !== undefined;
  }

  /** The connection is up: send everything that waited for it, in order. */
  flush(): void {
    const queue = this.queue;
    this.queue = [];
    for (const q of queue) {
      clearTimeout(q.timer);
      q.go();
    }
  }

  /** The socket dropped: requests on it will never be answered. */
  failInFlight(err: SymphonicError): void {
    const all = [...this.inFlight.values()];
    this.inFlight.clear();
    for (const p of all) {
      clearTimeout(p.timer);
      p.fail(err);
    }
  }

  /** The client closed: queued requests will never be sent. */
  failQueued(err: SymphonicError): void {
    const queue = this.queue;
    this.queue = [];
    for (const q of queue) {
      clearTimeout(q.timer);
      q.fail(err);
    }
  }

  get pending(): number {
    return this.inFlight.size + this.queue.length;
  }

  private take(id: number): InFlight | undefined {
    const p = this.inFlight.get(id);
    if (!p) return undefined;
    this.inFlight.delete(id);
    clearTimeout(p.timer);
    return p;
  }
}
