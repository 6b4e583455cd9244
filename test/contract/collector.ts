/**
 * Collects what a Bus delivers and lets a test wait for a condition on it (event-driven: the
 * condition is re-checked on every delivery, with a deadline), instead of sleeping.
 */
import type { BusMessage } from '../../gateway/bus/bus.ts';

export class Collector {
  readonly messages: BusMessage[] = [];
  private readonly waiters = new Set<() => void>();

  /** Pass this to `bus.start`. */
  readonly onMessage = (m: BusMessage): void => {
    this.messages.push(m);
    for (const w of [...this.waiters]) w();
  };

  of(topic: string): BusMessage[] {
    return this.messages.filter((m) => m.topic === topic);
  }

  /** Resolves once `predicate` holds (checked now and after every delivery); rejects after `timeoutMs`. */
  until(predicate: () => boolean, timeoutMs = 10_000, what = 'condition'): Promise<void> {
    return new Promise((resolve, reject) => {
      const check = () => {
        let ok = false;
        try {
          ok = predicate();
        } catch (e) {
          done();
          reject(e as Error);
          return;
        }
        if (ok) {
          done();
          resolve();
        }
      };
      const done = () => {
        clearTimeout(timer);
        this.waiters.delete(check);
      };
      const timer = setTimeout(() => {
        done();
        reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what} (${this.messages.length} messages received)`));
      }, timeoutMs);
      this.waiters.add(check);
      check();
    });
  }

  /** Waits until `topic` has received at least `count` messages. */
  count(topic: string, count: number, timeoutMs = 10_000): Promise<void> {
    return this.until(() => this.of(topic).length >= count, timeoutMs, `${count} messages on ${topic}`);
  }
}
