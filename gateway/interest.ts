/**
 * Counts local subscribers per topic so the bus is asked to watch a topic on the first local
 * subscriber and to stop after the last: one bus subscription per topic, never one per client.
 */
import type { Bus } from './bus/bus.ts';

export interface Interest {
  add(topic: string): Promise<void>;
  remove(topic: string): void;
  count(topic: string): number;
  topics(): number;
}

export function createInterest(bus: Bus): Interest {
  const counts = new Map<string, number>();
  const watching = new Map<string, Promise<void>>();
  return {
    add(topic) {
      const n = counts.get(topic) ?? 0;
      counts.set(topic, n + 1);
      let w = watching.get(topic);
      if (!w) {
        w = bus.watch(topic);
        watching.set(topic, w);
        // A failed watch is forgotten so the next subscriber retries it.
        w.catch(() => watching.get(topic) === w && watching.delete(topic));
      }
      return w;
    },
    remove(topic) {
      const n = (counts.get(topic) ?? 0) - 1;
      if (n > 0) return void counts.set(topic, n);
      counts.delete(topic);
      watching.delete(topic);
      bus.unwatch(topic);
    },
    count: (topic) => counts.get(topic) ?? 0,
    topics: () => counts.size,
  };
}
