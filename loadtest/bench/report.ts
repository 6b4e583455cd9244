/** Results of a benchmark run: their JSON shape, the comparison with the baseline, and text tables. */
import type { StepResult } from './generator.ts';

export interface TargetRun {
  target: string;
  description: string;
  subscribers: number;
  /** Time to open and subscribe every socket. */
  connectSeconds: number;
  /** Server memory growth per open subscriber. */
  serverKBPerConnection: number;
  /** Average size of the counted (delivered) messages' payloads. */
  messageBytes: number;
  steps: StepResult[];
  /** Problems the server reported to the publisher (error frames), if any. */
  publisherNotices?: { count: number; first: string[] };
  /** Why the step ladder stopped before its end, if it did. */
  stoppedEarly?: string;
  /** Interleaved rounds merged into this run (`--rounds`): each step is the median round. */
  rounds?: number;
  /** Set when the target could not run at all (the steps are then missing). */
  error?: string;
  /** Where the count-only sockets were: native sink processes, or Node. */
  generator?: 'node' | 'native';
  /** Close codes of subscribers the server closed during the run, with how many (1006: no close frame). */
  closeCodes?: Record<number, number>;
}

export interface Comparison {
  target: string;
  baseline: string;
  subscribers: number;
  /** Per step: target/baseline deliveries/s and server CPU per delivery. */
  steps: { step: number; deliveredRatio: number; nsPerDeliveryRatio: number; disturbed: boolean }[];
  /** The highest deliveries/s each reached in any step (saturated steps show capacity). */
  peak: { target: number; baseline: number; ratio: number };
  /**
   * With --rounds: each round's peaks and their ratio (the pair ran in the same round, close in
   * time), rounds whose peak step had the generator busy left out, and the median of the ratios,
   * which the verdict then uses. Saturated servers settle in a fast or a slow regime (up to 40%
   * apart) that holds for minutes and for every target alike, so a ratio of per-step medians taken
   * from different rounds compares regimes more than servers.
   */
  roundPeaks?: { target: number; baseline: number; ratio: number }[];
  pairedPeakRatio?: number;
  /** The highest step each sustained (see isSustained), in deliveries/s. */
  maxSustained: { target: number | null; baseline: number | null; ratio: number | null };
  /** CPU per delivery at the highest step both sustained: equal load, so a fair cost comparison. */
  cpuPerDelivery: { step: number; target: number; baseline: number; ratio: number } | null;
  /**
   * Issue target: deliveries ratio >= 0.9 (peak), and CPU-per-delivery ratio <= maxCpuRatio when
   * the pair has one (gateway/bare: 1.1; gateway-nats/relay: none, deliveries only).
   */
  verdict: 'pass' | 'fail' | 'n/a';
  /** The target is a peer (Socket.IO, nats-server): compared for reference, never judged. */
  peer?: boolean;
  /** The CPU-per-delivery ratio the verdict requires, if any. */
  maxCpuRatio?: number;
  notes: string[];
}

/**
 * A generator busier than this (% of one core) measures itself, not the server: a step where it
 * was is no peak, and a comparison whose peak came from one gets no verdict.
 */
export const GEN_BUSY_PCT = 70;

/**
 * Whether the generator was the limit at a step: all its processes together above GEN_BUSY_PCT
 * of the cores it was given (one with --pin), or one of them above GEN_BUSY_PCT of a core (a
 * single-threaded process that nears a core of its own is saturated however many cores are free).
 */
export function generatorBusy(s: StepResult): boolean {
  const cores = s.generatorCores ?? 1;
  return s.generatorCpuPct >= GEN_BUSY_PCT * cores || (s.generatorMaxProcCpuPct ?? s.generatorCpuPct) >= GEN_BUSY_PCT;
}

/** Steps fit for comparison: the subscriber set was whole, and neighbours did not take much CPU. */
export function usable(steps: StepResult[]): StepResult[] {
  return steps.filter((s) => s.closedDuringStep === 0 && !s.disturbed);
}

export function peakOf(steps: StepResult[]): StepResult | undefined {
  return usable(steps).reduce<StepResult | undefined>((best, s) => (!best || s.deliveredPerSec > best.deliveredPerSec ? s : best), undefined);
}

export function maxSustainedOf(steps: StepResult[]): number | null {
  const ok = steps.filter((s) => s.sustained).map((s) => s.targetDeliveriesPerSec);
  return ok.length ? Math.max(...ok) : null;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

export function compare(run: TargetRun, base: TargetRun, maxCpuRatio?: number, peer = false, rounds: { run: TargetRun; base: TargetRun }[] = []): Comparison {
  const notes: string[] = [];
  const byStep = new Map(base.steps.map((s) => [s.targetDeliveriesPerSec, s]));
  const steps = run.steps.flatMap((s) => {
    const b = byStep.get(s.targetDeliveriesPerSec);
    if (!b) return [];
    const disturbed = s.disturbed || b.disturbed;
    return [
      {
        step: s.targetDeliveriesPerSec,
        deliveredRatio: s.deliveredPerSec / b.deliveredPerSec,
        nsPerDeliveryRatio: s.serverNsPerDelivery / b.serverNsPerDelivery,
        disturbed,
      },
    ];
  });
  const pt = peakOf(run.steps);
  const pb = peakOf(base.steps);
  const peak = { target: pt?.deliveredPerSec ?? NaN, baseline: pb?.deliveredPerSec ?? NaN, ratio: pb && pt ? pt.deliveredPerSec / pb.deliveredPerSec : NaN };
  const mt = maxSustainedOf(run.steps);
  const mb = maxSustainedOf(base.steps);
  // CPU per delivery depends on load (and on contention: a starved server batches more, so each
  // delivery looks cheaper), so it is compared at one step, sustained and undisturbed on both.
  const common = usable(run.steps)
    .filter((s) => s.sustained && byStep.get(s.targetDeliveriesPerSec)?.sustained && !byStep.get(s.targetDeliveriesPerSec)?.disturbed)
    .map((s) => s.targetDeliveriesPerSec);
  let cpuPerDelivery: Comparison['cpuPerDelivery'] = null;
  if (common.length) {
    const step = Math.max(...common);
    const t = run.steps.find((s) => s.targetDeliveriesPerSec === step)!.serverNsPerDelivery;
    const b = byStep.get(step)!.serverNsPerDelivery;
    cpuPerDelivery = { step, target: t, baseline: b, ratio: t / b };
  }
  let generatorBound = false;
  for (const [name, s] of [
    [base.target, pb],
    [run.target, pt],
  ] as const) {
    if (s && generatorBusy(s)) {
      generatorBound = true;
      notes.push(
        `${name}'s peak step had the generator at ${s.generatorCpuPct.toFixed(0)}% of a core (busiest process ${(s.generatorMaxProcCpuPct ?? s.generatorCpuPct).toFixed(0)}%; limit ${GEN_BUSY_PCT}% of ${s.generatorCores ?? 1} core(s)): that is the generator's limit, not a peak of the server`,
      );
    }
  }
  // A peak from a sustained step is only a floor of the capacity (the server kept up with all it was asked).
  const baseFloor = pb?.sustained === true;
  if (baseFloor) {
    notes.push(
      pb === base.steps.at(-1)
        ? 'the baseline sustained the top step: its peak is a floor, not its capacity (add a higher --steps)'
        : "the baseline's peak comes from a step it sustained (its unsustained steps delivered less, or were disturbed): its capacity is not pinned down",
    );
  }
  if (run.stoppedEarly) notes.push(`${run.target}: ${run.stoppedEarly}`);
  const disturbed = [...base.steps, ...run.steps].filter((s) => s.disturbed).length;
  if (disturbed) notes.push(`${disturbed} step(s) were disturbed by other processes (other % > 25, marked !) and are left out of the peak and CPU comparisons`);
  const roundPeaks = rounds.flatMap(({ run: r, base: b }) => {
    const t = peakOf(r.steps);
    const p = peakOf(b.steps);
    return t && p && !generatorBusy(t) && !generatorBusy(p)
      ? [{ target: t.deliveredPerSec, baseline: p.deliveredPerSec, ratio: t.deliveredPerSec / p.deliveredPerSec }]
      : [];
  });
  const pairedPeakRatio = roundPeaks.length >= 2 ? median(roundPeaks.map((x) => x.ratio)) : undefined;
  if (pairedPeakRatio !== undefined) {
    generatorBound = false; // rounds with a busy generator are left out of the paired ratio
    notes.push(
      `peak ratio per round: ${roundPeaks.map((x) => x.ratio.toFixed(2) + 'x').join(', ')}; median ${pairedPeakRatio.toFixed(2)}x (the verdict's figure${roundPeaks.length < rounds.length ? `; ${rounds.length - roundPeaks.length} round(s) left out, the generator busy at a peak` : ''})`,
    );
  }
  const peakRatio = pairedPeakRatio ?? peak.ratio;
  let verdict: Comparison['verdict'] = 'n/a';
  if (Number.isFinite(peakRatio) && cpuPerDelivery)
    verdict = peakRatio >= 0.9 && (maxCpuRatio === undefined || cpuPerDelivery.ratio <= maxCpuRatio) ? 'pass' : 'fail';
  // Against an unmeasured baseline capacity a good ratio proves nothing (a bad one still fails).
  if (verdict === 'pass' && baseFloor) verdict = 'n/a';
  // A peak set by the generator compares two generators: no verdict either way.
  if (generatorBound) verdict = 'n/a';
  // A peer has no target to meet: the ratios are for reference.
  if (peer) verdict = 'n/a';
  return {
    target: run.target,
    baseline: base.target,
    subscribers: run.subscribers,
    steps,
    peak,
    ...(pairedPeakRatio === undefined ? {} : { roundPeaks, pairedPeakRatio }),
    maxSustained: { target: mt, baseline: mb, ratio: mt !== null && mb !== null ? mt / mb : null },
    cpuPerDelivery,
    verdict,
    ...(peer ? { peer: true } : {}),
    ...(maxCpuRatio !== undefined ? { maxCpuRatio } : {}),
    notes,
  };
}

// ---- text ---------------------------------------------------------------------------------------

function table(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]) => cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ');
  return [line(header), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.map(line)].join('\n');
}

const m = (x: number) => (Number.isFinite(x) ? (x / 1e6).toFixed(2) : '-');
const f = (x: number, d = 1) => (Number.isFinite(x) ? x.toFixed(d) : '-');
const mM = (x: number) => (Number.isFinite(x) ? m(x) + 'M' : '-');
const r2 = (x: number | null) => (x !== null && Number.isFinite(x) ? x.toFixed(2) + 'x' : '-');

/** `srv CPU %` and `srv ns/dlv` are server-side: the server process plus nats-server, if any (shown alone under `nats %`). */
export const STEP_HEADER = [
  'step M/s',
  'pub/s',
  'offered M/s',
  'delivered M/s',
  'loss %',
  'p50 ms',
  'p99 ms',
  'srv CPU %',
  'nats %',
  'srv ns/dlv',
  'gen CPU %',
  'gen max %',
  'other %',
  'irq %',
  'sustained',
];

export function stepRow(s: StepResult): string[] {
  return [
    m(s.targetDeliveriesPerSec),
    f(s.publishRate, 0),
    m(s.offeredDeliveriesPerSec),
    m(s.deliveredPerSec),
    s.lossPct === 0 ? '0' : f(s.lossPct, 2),
    f(s.latencyMs.p50, 2),
    f(s.latencyMs.p99, 2),
    f(s.serverCpuPct, 0),
    s.helperCpuPct ? f(s.helperCpuPct, 0) : '-',
    f(s.serverNsPerDelivery, 0),
    f(s.generatorCpuPct, 0) + (generatorBusy(s) ? '*' : ''),
    f(s.generatorMaxProcCpuPct ?? NaN, 0),
    f(s.otherCpuPct, 0) + (s.disturbed ? '!' : ''),
    s.irqCpuPct === undefined ? '-' : f(s.irqCpuPct, 0),
    (s.sustained ? 'yes' : 'no') + (s.closedDuringStep ? ` (${s.closedDuringStep} closed)` : '') + (s.foreign ? ` (${s.foreign} foreign)` : ''),
  ];
}

export function formatRun(run: TargetRun): string {
  const title = `== ${run.target} (${run.description}), ${run.subscribers} subscribers`;
  if (run.error) return `${title}\nERROR: ${run.error}`;
  const info =
    `connect ${f(run.connectSeconds)} s, server +${f(run.serverKBPerConnection, 2)} KB/connection, ${f(run.messageBytes, 0)}-byte messages` +
    (run.generator ? `, generator ${run.generator}` : '') +
    (run.rounds
      ? `; median of ${run.rounds} interleaved rounds per step (delivered M/s per round: ${run.steps.map((s) => `${m(s.targetDeliveriesPerSec)}: ${(s.deliveredPerSecRuns ?? []).map((x) => f(x / 1e6, 2)).join('/')}`).join(', ')})`
      : '');
  return [
    title,
    info,
    table(STEP_HEADER, run.steps.map(stepRow)),
    ...(run.stoppedEarly ? [`stopped early: ${run.stoppedEarly}`] : []),
    ...(run.closeCodes
      ? [
          `the server closed subscribers: ${Object.entries(run.closeCodes)
            .map(([code, k]) => `${k} with ${code}`)
            .join(', ')}`,
        ]
      : []),
    ...(run.publisherNotices ? [`the publisher got ${run.publisherNotices.count} error reports, e.g. ${run.publisherNotices.first[0]}`] : []),
  ].join('\n');
}

export function formatComparison(c: Comparison): string {
  const rows = c.steps.map((s) => [m(s.step) + (s.disturbed ? '!' : ''), r2(s.deliveredRatio), r2(s.nsPerDeliveryRatio)]);
  const lines = [
    `== ${c.target} / ${c.baseline}, ${c.subscribers} subscribers`,
    table(['step M/s', 'deliveries/s ratio', 'CPU/delivery ratio'], rows),
    c.pairedPeakRatio === undefined
      ? `peak deliveries/s (undisturbed steps): ${mM(c.peak.target)} vs ${mM(c.peak.baseline)} = ${r2(c.peak.ratio)}${c.peer ? '' : ' (target >= 0.90x)'}`
      : `peak deliveries/s: ${mM(c.peak.target)} vs ${mM(c.peak.baseline)} = ${r2(c.peak.ratio)} over per-step medians; paired by round ${r2(c.pairedPeakRatio)}${c.peer ? '' : ' (target >= 0.90x)'}`,
    `max sustained step: ${mM(c.maxSustained.target ?? NaN)} vs ${mM(c.maxSustained.baseline ?? NaN)}`,
    c.cpuPerDelivery
      ? `CPU per delivery at ${mM(c.cpuPerDelivery.step)}/s (highest step both sustained, undisturbed): ${f(c.cpuPerDelivery.target, 0)} ns vs ${f(c.cpuPerDelivery.baseline, 0)} ns = ${r2(c.cpuPerDelivery.ratio)}` +
        (c.maxCpuRatio !== undefined ? ` (target <= ${c.maxCpuRatio.toFixed(2)}x)` : c.peer ? '' : " (reported; not part of this pair's target)")
      : 'CPU per delivery: no step that both sustained undisturbed',
    c.peer
      ? 'verdict: none (a peer, measured for reference)'
      : `verdict: ${c.verdict.toUpperCase()}` + (c.maxCpuRatio === undefined ? ' (peak deliveries/s ratio >= 0.90x)' : ''),
    ...c.notes.map((n) => `note: ${n}`),
  ];
  return lines.join('\n');
}
