/**
 * Every target of a run side by side: a markdown table per subscriber count (peak deliveries/s,
 * CPU per delivery, latency and the generator's CPU at one reference step), and an SVG chart of
 * p99 latency against offered deliveries/s. Plain strings, no dependency.
 */
import type { StepResult } from './generator.ts';
import { GEN_BUSY_PCT, generatorBusy, maxSustainedOf, peakOf, usable, type TargetRun } from './report.ts';

export interface SummaryRow {
  target: string;
  description: string;
  baseline?: string;
  error?: string;
  /** Highest delivered rate of an undisturbed step with the whole subscriber set, and that step. */
  peak: { deliveredPerSec: number; step: number; generatorCpuPct: number; generatorBusy: boolean; sustained: boolean; disturbed: boolean } | null;
  /** Highest step sustained (deliveries/s asked for). */
  maxSustained: number | null;
  /** Figures at the reference step (null if the target did not run it). */
  atStep: { nsPerDelivery: number; p50: number; p99: number; generatorCpuPct: number; serverCpuPct: number; sustained: boolean; disturbed: boolean } | null;
  /** Against the baseline at the same subscriber count: peak ratio, and CPU per delivery ratio at the reference step. */
  vsBaseline?: { peakRatio: number; cpuRatio: number };
}

export interface Summary {
  subscribers: number;
  /**
   * The step the CPU-per-delivery, latency and generator figures are taken at: the highest step
   * every target sustained undisturbed (`common`), or else the lowest step (`lowest`; some target
   * did not sustain it, see each row's `sustained`).
   */
  referenceStep: number | null;
  referenceKind: 'common' | 'lowest' | 'none';
  rows: SummaryRow[];
}

function stepOf(run: TargetRun, step: number): StepResult | undefined {
  return run.steps.find((s) => s.targetDeliveriesPerSec === step);
}

/** One summary per subscriber count, targets in the order they ran; `baselines` maps target -> baseline name. */
export function summarize(runs: TargetRun[], baselines: Record<string, string | undefined>): Summary[] {
  const counts = [...new Set(runs.map((r) => r.subscribers))];
  return counts.map((n) => {
    const group = runs.filter((r) => r.subscribers === n);
    const ok = group.filter((r) => !r.error && r.steps.length > 0);
    const stepSets = ok.map(
      (r) =>
        new Set(
          usable(r.steps)
            .filter((s) => s.sustained)
            .map((s) => s.targetDeliveriesPerSec),
        ),
    );
    const common = ok.length ? [...stepSets[0]!].filter((v) => stepSets.every((set) => set.has(v))) : [];
    let referenceStep: number | null = null;
    let referenceKind: Summary['referenceKind'] = 'none';
    if (common.length) {
      referenceStep = Math.max(...common);
      referenceKind = 'common';
    } else {
      const ran = ok.map((r) => new Set(r.steps.map((s) => s.targetDeliveriesPerSec)));
      const everywhere = ok.length ? [...ran[0]!].filter((v) => ran.every((set) => set.has(v))) : [];
      if (everywhere.length) {
        referenceStep = Math.min(...everywhere);
        referenceKind = 'lowest';
      }
    }
    const rows = group.map((run): SummaryRow => {
      const base: SummaryRow = { target: run.target, description: run.description, peak: null, maxSustained: null, atStep: null };
      const baseline = baselines[run.target];
      if (baseline) base.baseline = baseline;
      if (run.error) return { ...base, error: run.error };
      // Undisturbed steps if any (as the comparisons do); else the disturbed ones, marked so.
      const p = peakOf(run.steps) ?? peakOf(run.steps.filter((x) => x.closedDuringStep === 0).map((x) => ({ ...x, disturbed: false })));
      const pDisturbed = p !== undefined && run.steps.find((x) => x.targetDeliveriesPerSec === p.targetDeliveriesPerSec)!.disturbed;
      const s = referenceStep === null ? undefined : stepOf(run, referenceStep);
      return {
        ...base,
        peak: p
          ? {
              deliveredPerSec: p.deliveredPerSec,
              step: p.targetDeliveriesPerSec,
              generatorCpuPct: p.generatorCpuPct,
              generatorBusy: generatorBusy(p),
              sustained: p.sustained,
              disturbed: pDisturbed,
            }
          : null,
        maxSustained: maxSustainedOf(run.steps),
        atStep: s
          ? {
              nsPerDelivery: s.serverNsPerDelivery,
              p50: s.latencyMs.p50,
              p99: s.latencyMs.p99,
              generatorCpuPct: s.generatorCpuPct,
              serverCpuPct: s.serverCpuPct,
              sustained: s.sustained,
              disturbed: s.disturbed,
            }
          : null,
      };
    });
    for (const row of rows) {
      const b = row.baseline ? rows.find((r) => r.target === row.baseline) : undefined;
      if (!b || row.error || b.error) continue;
      row.vsBaseline = {
        peakRatio: row.peak && b.peak ? row.peak.deliveredPerSec / b.peak.deliveredPerSec : NaN,
        cpuRatio: row.atStep && b.atStep ? row.atStep.nsPerDelivery / b.atStep.nsPerDelivery : NaN,
      };
    }
    return { subscribers: n, referenceStep, referenceKind, rows };
  });
}

// ---- markdown -----------------------------------------------------------------------------------

const fin = (x: number | undefined | null): x is number => typeof x === 'number' && Number.isFinite(x);
const M = (x: number | null | undefined) => (fin(x) ? `${(x / 1e6).toFixed(2)}M` : '-');
const stepM = (x: number) => `${+(x / 1e6).toFixed(3)}M`;
const ms = (x: number) => (!fin(x) ? '-' : x < 10 ? x.toFixed(2) : x < 100 ? x.toFixed(1) : x.toFixed(0));
const pct = (x: number | undefined) => (fin(x) ? `${x.toFixed(0)}%` : '-');
const ratio = (x: number | undefined) => (fin(x) ? `${x.toFixed(2)}x` : '-');
const cell = (s: string) => s.replace(/\|/g, '\\|').replace(/\n/g, ' ');

export function formatMarkdown(summaries: Summary[]): string {
  const out: string[] = [];
  for (const sm of summaries) {
    const at = sm.referenceStep === null ? null : stepM(sm.referenceStep);
    out.push(`### ${sm.subscribers.toLocaleString('en-US')} subscribers`, '');
    if (sm.referenceKind === 'common') out.push(`Reference step: **${at} deliveries/s**, the highest step every target sustained (undisturbed).`, '');
    else if (sm.referenceKind === 'lowest')
      out.push(
        `Reference step: **${at} deliveries/s**, the lowest step: no step was sustained by every target without disturbance (see the "sustained" column).`,
        '',
      );
    else out.push('No step every target ran: no reference step.', '');
    const ref = at ?? 'ref';
    out.push(
      `| target | peak deliveries/s (step) | max sustained step | CPU per delivery at ${ref} | p50 / p99 at ${ref} | generator CPU at ${ref} / at peak | sustained at ${ref} | vs baseline: peak, CPU per delivery |`,
      '| --- | --- | --- | --- | --- | --- | --- | --- |',
    );
    const notes = new Set<string>();
    for (const r of sm.rows) {
      if (r.error) {
        out.push(`| ${cell(r.target)} | error: ${cell(r.error.split('\n')[0]!.slice(0, 120))} | | | | | | |`);
        continue;
      }
      let peak = '-';
      if (r.peak) {
        peak = `${r.peak.sustained ? '>= ' : ''}${M(r.peak.deliveredPerSec)} (${stepM(r.peak.step)})`;
        if (r.peak.disturbed) {
          peak += ' !';
          notes.add(
            '`!`: every step of the target was disturbed by other processes (other load above 25% of a core): a rough figure, rerun on a quiet machine.',
          );
        }
        if (r.peak.sustained)
          notes.add(
            '`>=` before a peak: it comes from a step the target sustained, so it is a floor of its capacity, not the capacity (add higher `--steps`); a peak ratio against such a floor is a bound (`<=`, `>=`), or unknown when both are floors.',
          );
        if (r.peak.generatorBusy) {
          peak += ' †';
          notes.add(
            `†: the generator used ${GEN_BUSY_PCT}% or more of the cores it was given (or one of its processes ${GEN_BUSY_PCT}% of a core) at that step: the peak may be the generator's limit, not the server's.`,
          );
        }
      }
      const a = r.atStep;
      let vs = r.baseline ? `(${r.baseline} not run)` : 'baseline';
      if (r.vsBaseline) {
        // A peak from a sustained step is a floor: the ratio is then a bound, or unknown if both are.
        const b = sm.rows.find((x) => x.target === r.baseline)?.peak;
        const tFloor = r.peak?.sustained === true;
        const bFloor = b?.sustained === true;
        const peakRatio = tFloor && bFloor ? '? (both floors)' : (tFloor ? '>= ' : bFloor ? '<= ' : '') + ratio(r.vsBaseline.peakRatio);
        vs = `${peakRatio}, ${ratio(r.vsBaseline.cpuRatio)} (vs ${r.baseline})`;
      }
      out.push(
        `| ${cell(r.target)} | ${peak} | ${M(r.maxSustained)} | ${a && fin(a.nsPerDelivery) ? `${a.nsPerDelivery.toFixed(0)} ns` : '-'} | ${a ? `${ms(a.p50)} / ${ms(a.p99)} ms` : '-'} | ${pct(a?.generatorCpuPct)} / ${pct(r.peak?.generatorCpuPct)} | ${a ? (a.sustained ? 'yes' : 'no') + (a.disturbed ? ' (disturbed)' : '') : '-'} | ${vs} |`,
      );
    }
    out.push('');
    for (const n of notes) out.push(`- ${n}`);
    out.push(
      '- CPU per delivery is server-side CPU (the server process, plus nats-server for the NATS targets; for `nats-ws` nats-server is the server) divided by deliveries. Latency is publish-to-receive over the sampled sockets.',
      '',
    );
  }
  return out.join('\n');
}

// ---- SVG ----------------------------------------------------------------------------------------

const COLORS = ['#1f77b4', '#d62728', '#2ca02c', '#ff7f0e', '#9467bd', '#8c564b', '#e377c2', '#7f7f7f', '#bcbd22', '#17becf'];
const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
const num = (x: number) => +x.toFixed(1);

/**
 * p99 latency (y, log scale) against offered deliveries/s (x), one line per target, one panel per
 * subscriber count. Filled markers: sustained steps; hollow: not sustained.
 */
export function renderSvg(runs: TargetRun[], title = 'Fan-out: p99 latency vs offered deliveries/s'): string {
  const counts = [...new Set(runs.map((r) => r.subscribers))];
  const targets = [...new Set(runs.map((r) => r.target))];
  const color = (t: string) => COLORS[targets.indexOf(t) % COLORS.length]!;
  const W = 760;
  const PH = 380; // panel height
  const L = 70;
  const R = 170;
  const T = 46;
  const B = 50;
  const H = 24 + counts.length * PH;
  const parts: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif" font-size="12">`,
    `<rect width="${W}" height="${H}" fill="white"/>`,
    `<text x="${W / 2}" y="18" text-anchor="middle" font-size="14" font-weight="bold">${esc(title)}</text>`,
  ];
  counts.forEach((n, pi) => {
    const y0 = 24 + pi * PH;
    const group = runs.filter((r) => r.subscribers === n);
    const pts = group.flatMap((r) => r.steps.filter((s) => fin(s.latencyMs.p99) && s.latencyMs.p99 > 0 && fin(s.offeredDeliveriesPerSec)));
    const plotW = W - L - R;
    const plotH = PH - T - B;
    const xMaxRaw = Math.max(1e5, ...pts.map((s) => s.offeredDeliveriesPerSec));
    const xStep = niceStep(xMaxRaw / 6);
    const xMax = Math.ceil((xMaxRaw * 1.02) / xStep) * xStep;
    const lats = pts.map((s) => s.latencyMs.p99);
    const yLo = Math.floor(Math.log10(Math.min(1, ...lats)));
    const yHi = Math.max(yLo + 1, Math.ceil(Math.log10(Math.max(10, ...lats))));
    const X = (v: number) => L + (v / xMax) * plotW;
    const Y = (ms: number) => y0 + T + plotH - ((Math.log10(ms) - yLo) / (yHi - yLo)) * plotH;
    parts.push(`<text x="${L + plotW / 2}" y="${y0 + 30}" text-anchor="middle" font-size="13">${n.toLocaleString('en-US')} subscribers</text>`);
    // Grid and axes.
    for (let e = yLo; e <= yHi; e++) {
      const v = 10 ** e;
      parts.push(`<line x1="${L}" x2="${L + plotW}" y1="${num(Y(v))}" y2="${num(Y(v))}" stroke="#ccc"/>`);
      parts.push(`<text x="${L - 6}" y="${num(Y(v) + 4)}" text-anchor="end">${v >= 1 ? v.toFixed(0) : v.toString()}</text>`);
      if (e < yHi) for (const k of [2, 5]) parts.push(`<line x1="${L}" x2="${L + plotW}" y1="${num(Y(k * v))}" y2="${num(Y(k * v))}" stroke="#eee"/>`);
    }
    for (let v = 0; v <= xMax + xStep / 2; v += xStep) {
      parts.push(`<line x1="${num(X(v))}" x2="${num(X(v))}" y1="${y0 + T}" y2="${y0 + T + plotH}" stroke="#eee"/>`);
      parts.push(`<text x="${num(X(v))}" y="${y0 + T + plotH + 16}" text-anchor="middle">${+(v / 1e6).toFixed(2)}</text>`);
    }
    parts.push(`<rect x="${L}" y="${y0 + T}" width="${plotW}" height="${plotH}" fill="none" stroke="#333"/>`);
    parts.push(`<text x="${L + plotW / 2}" y="${y0 + T + plotH + 36}" text-anchor="middle">offered deliveries/s (millions)</text>`);
    parts.push(`<text transform="translate(${L - 48},${y0 + T + plotH / 2}) rotate(-90)" text-anchor="middle">p99 latency, ms (log)</text>`);
    // One line per target.
    group.forEach((run, i) => {
      const c = color(run.target);
      const steps = run.steps.filter((s) => fin(s.latencyMs.p99) && s.latencyMs.p99 > 0).sort((a, b) => a.offeredDeliveriesPerSec - b.offeredDeliveriesPerSec);
      if (steps.length > 1)
        parts.push(
          `<polyline fill="none" stroke="${c}" stroke-width="2" points="${steps.map((s) => `${num(X(s.offeredDeliveriesPerSec))},${num(Y(s.latencyMs.p99))}`).join(' ')}"/>`,
        );
      for (const s of steps) {
        const tip = `${run.target}: offered ${(s.offeredDeliveriesPerSec / 1e6).toFixed(2)}M/s, delivered ${(s.deliveredPerSec / 1e6).toFixed(2)}M/s, p99 ${ms(s.latencyMs.p99)} ms${s.sustained ? '' : ' (not sustained)'}`;
        parts.push(
          `<circle cx="${num(X(s.offeredDeliveriesPerSec))}" cy="${num(Y(s.latencyMs.p99))}" r="4" stroke="${c}" stroke-width="2" fill="${s.sustained ? c : 'white'}"><title>${esc(tip)}</title></circle>`,
        );
      }
      const ly = y0 + T + 10 + i * 20;
      const lx = L + plotW + 14;
      parts.push(
        `<line x1="${lx}" x2="${lx + 22}" y1="${ly}" y2="${ly}" stroke="${c}" stroke-width="2"/><circle cx="${lx + 11}" cy="${ly}" r="4" fill="${c}"/>`,
      );
      parts.push(`<text x="${lx + 28}" y="${ly + 4}">${esc(run.target)}${run.error ? ' (error)' : ''}</text>`);
    });
    const ly = y0 + T + 10 + group.length * 20 + 8;
    parts.push(
      `<text x="${L + plotW + 14}" y="${ly}" fill="#555">filled: sustained</text>`,
      `<text x="${L + plotW + 14}" y="${ly + 16}" fill="#555">hollow: not sustained</text>`,
    );
  });
  parts.push('</svg>');
  return parts.join('\n') + '\n';
}

/** 1, 2 or 5 times a power of ten, at least `raw`. */
function niceStep(raw: number): number {
  const p = 10 ** Math.floor(Math.log10(raw));
  for (const k of [1, 2, 5, 10]) if (k * p >= raw) return k * p;
  return 10 * p;
}
