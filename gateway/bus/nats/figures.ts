/** The engine's numbers: stats() for tests and tools, figures() for /metrics (`symphonic_bus_nats_*`). */
import type { BusFigure } from '../bus.ts';
import type { EngineState } from './state.ts';
import { feedTotals } from './watches.ts';

export interface NatsBusStats {
  readonly epoch: string;
  readonly watched: number;
  readonly published: number;
  readonly publishRetries: number;
  readonly delivered: number;
  readonly repairs: number;
  readonly repaired: number;
  readonly duplicates: number;
  readonly losses: number;
  readonly resyncs: number;
  /** Whether this gateway is the deployment's state keeper now. */
  readonly keeper: boolean;
  readonly keeperApplied: number;
  /** Times this gateway became the keeper (each time its watched topics move to the wildcard subscription). */
  readonly keeperTerms: number;
  /** Topics' messages the keeper missed on the wire and read back from the stream. */
  readonly keeperGaps: number;
  /** Messages the keeper purged from namespaces with a shorter age than the stream's. */
  readonly agePurged: number;
  /** Messages the keeper trimmed from topics of namespaces with a smaller size than the stream's. */
  readonly sizeTrimmed: number;
  readonly snapshotWrites: number;
  readonly epochChanges: number;
}

export function stats(s: EngineState): NatsBusStats {
  const { counts } = s;
  return {
    epoch: s.epoch,
    watched: s.watches.size,
    published: counts.published,
    publishRetries: counts.publishRetries,
    resyncs: counts.resyncs,
    epochChanges: counts.epochChanges,
    ...feedTotals(s),
    keeper: s.term?.keeper.active ?? false,
    keeperApplied: counts.keeper.applied,
    keeperTerms: counts.keeperTerms,
    keeperGaps: counts.keeper.gaps,
    agePurged: counts.purge.purged,
    sizeTrimmed: counts.keeper.trimmed,
    snapshotWrites: counts.keeper.writes,
  };
}

type Counter = { [K in keyof NatsBusStats]: NatsBusStats[K] extends number ? K : never }[keyof NatsBusStats];

/** The counters /metrics shows: the stat, its metric name, what it counts. */
const COUNTERS: readonly (readonly [Counter, string, string])[] = [
  ['publishRetries', 'nats_publish_retries_total', 'Publish attempts retried (timeouts, reconnects, elections).'],
  ['repairs', 'nats_gap_repairs_total', 'Live-path gaps repaired from the stream.'],
  ['repaired', 'nats_messages_repaired_total', 'Messages read back from the stream by gap repairs.'],
  ['losses', 'nats_losses_total', 'Gaps the stream could no longer fill (retention dropped the messages first).'],
  ['resyncs', 'nats_resyncs_total', 'Reconnects after which every watched topic re-read the stream.'],
  ['epochChanges', 'nats_epoch_changes_total', 'Times the stream was found recreated.'],
  ['keeperTerms', 'nats_keeper_terms_total', 'Times this gateway became the state keeper.'],
  ['keeperApplied', 'nats_keeper_applied_total', 'Messages applied to topic state by the keeper on this gateway.'],
  ['keeperGaps', 'nats_keeper_gaps_total', 'Messages the keeper missed on the wire and read back.'],
  ['snapshotWrites', 'nats_snapshot_writes_total', 'Topic snapshots written to KV by the keeper on this gateway.'],
  ['agePurged', 'nats_age_purged_total', 'Messages purged from the stream by namespace age limits (keeper).'],
  ['sizeTrimmed', 'nats_size_trimmed_total', 'Messages trimmed from the stream by namespace size limits (keeper).'],
];

export function figures(st: NatsBusStats): BusFigure[] {
  return [
    { name: 'nats_keeper', type: 'gauge', help: "1 while this gateway is the deployment's state keeper.", value: st.keeper ? 1 : 0 },
    ...COUNTERS.map(([stat, name, help]): BusFigure => ({ name, type: 'counter', help, value: st[stat] })),
  ];
}
