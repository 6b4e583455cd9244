/**
 * Topic aliases for compact connections (`hello.compact`): a small integer names a topic in every
 * compact `msg` instead of the topic string. One alias per topic on this gateway while compact
 * subscribers hold it, shared by all of them (the fan-out writes the same bytes to each), never
 * reused for another topic: numbers only grow, so a stale alias can never name the wrong topic.
 */
export interface Aliases {
  /** The topic's alias, taken by one more compact subscriber. */
  acquire(topic: string): number;
  /** A compact subscriber is gone; the last one frees the alias. */
  release(topic: string): void;
  /** The topic's alias while it has compact subscribers. */
  of(topic: string): number | undefined;
  size(): number;
}

export function createAliases(): Aliases {
  const byTopic = new Map<string, { alias: number; holders: number }>();
  let next = 1;
  return {
    acquire(topic) {
      let a = byTopic.get(topic);
      if (!a) byTopic.set(topic, (a = { alias: next++, holders: 0 }));
      a.holders++;
      return a.alias;
    },
    release(topic) {
      const a = byTopic.get(topic);
      if (a && --a.holders <= 0) byTopic.delete(topic);
    },
    of: (topic) => byTopic.get(topic)?.alias,
    size: () => byTopic.size,
  };
}
