/**
 * CPU use of groups of processes over a window, for the multi-process benchmarks: each process's
 * CPU (user + system, all threads, /proc/<pid>/stat) and the time its main thread waited for a
 * CPU while runnable (/proc/<pid>/schedstat), in % of one core, and what the rest of the machine
 * used meanwhile (/proc/stat minus the measured processes).
 *
 * The wait matters on a machine with more runnable threads than cores: a generator or a server
 * that is not busy itself still reads and writes late by that much, and latency includes it.
 */
import { readFileSync } from 'node:fs';
import { machineBusySeconds, procCpuSeconds } from './proc.ts';

/** Seconds the process's main thread has been runnable but not running (0 once it is gone). */
export function runQueueWaitSeconds(pid: number): number {
  try {
    return Number(readFileSync(`/proc/${pid}/schedstat`, 'latin1').split(' ')[1]) / 1e9;
  } catch {
    return 0;
  }
}

function cpuOf(pid: number): number | null {
  try {
    return procCpuSeconds(pid);
  } catch {
    return null; // exited (e.g. the gateway a resume benchmark killed)
  }
}

export interface UsageSnapshot {
  readonly at: number;
  readonly cpu: Record<string, (number | null)[]>;
  readonly wait: Record<string, number[]>;
  readonly machine: number;
}

/** CPU and wait seconds so far of every process, by group name (e.g. gateways, nats, generators). */
export function usageSnapshot(groups: Record<string, readonly number[]>): UsageSnapshot {
  const cpu: Record<string, (number | null)[]> = {};
  const wait: Record<string, number[]> = {};
  for (const [name, pids] of Object.entries(groups)) {
    cpu[name] = pids.map(cpuOf);
    wait[name] = pids.map(runQueueWaitSeconds);
  }
  return { at: performance.now(), cpu, wait, machine: machineBusySeconds() };
}

export interface Usage {
  readonly seconds: number;
  /** Per group, per process: CPU in % of one core (null: the process was gone at either end). */
  readonly cpuPct: Record<string, (number | null)[]>;
  /** Per group, per process: % of the window its main thread waited for a CPU. */
  readonly runQueueWaitPct: Record<string, number[]>;
  /** The machine's busy time not accounted to the groups, % of one core. */
  readonly otherPct: number;
}

export function usageBetween(a: UsageSnapshot, b: UsageSnapshot): Usage {
  const wall = (b.at - a.at) / 1000;
  const pct = (s: number) => Math.round((s / wall) * 100);
  const cpuPct: Record<string, (number | null)[]> = {};
  const runQueueWaitPct: Record<string, number[]> = {};
  let ours = 0;
  for (const name of Object.keys(b.cpu)) {
    cpuPct[name] = b.cpu[name]!.map((s, i) => {
      const s0 = a.cpu[name]![i];
      if (s === null || s0 === null || s0 === undefined) return null;
      ours += s - s0;
      return pct(s - s0);
    });
    runQueueWaitPct[name] = b.wait[name]!.map((s, i) => Math.max(0, pct(s - a.wait[name]![i]!)));
  }
  return { seconds: +wall.toFixed(1), cpuPct, runQueueWaitPct, otherPct: Math.max(0, pct(b.machine - a.machine - ours)) };
}
