/**
 * A CPU quota for the server side of a benchmark (the server and its nats-server), as a Linux
 * cgroup with CFS bandwidth control: `fraction` of one core, in 10 ms periods.
 *
 * Why: a fan-out server on one core can send more deliveries than one generator core can receive
 * (the kernel's receive work alone is most of a core at 3-4M/s). Capping every server at the same
 * fraction of a core brings its capacity under what the generator receives below 70% of its core,
 * so peaks are the servers' and their ratio is a ratio of capacity per unit of CPU.
 *
 * cgroup v1 (`/sys/fs/cgroup/cpu`, `cpu.cfs_quota_us`) or v2 (`cpu.max`); needs write access to
 * the hierarchy (root, or a delegated subtree) and throws saying so otherwise.
 */
import { existsSync, mkdirSync, readFileSync, rmdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';

/** Short periods: a throttled server waits at most (1 - fraction) x 10 ms, not 100 ms (the default period). */
const PERIOD_US = 10_000;

export interface CpuCap {
  readonly fraction: number;
  readonly dir: string;
  /** Moves a process (all its threads; children it starts later inherit the group) under the cap. */
  add(pid: number): void;
  /** Removes the group (its processes must have exited or been moved). Idempotent. */
  remove(): void;
}

interface Hierarchy {
  root: string;
  v2: boolean;
}

function findHierarchy(): Hierarchy | null {
  if (existsSync('/sys/fs/cgroup/cpu/cpu.cfs_quota_us')) return { root: '/sys/fs/cgroup/cpu', v2: false };
  for (const root of ['/sys/fs/cgroup', '/sys/fs/cgroup/unified']) {
    const controllers = path.join(root, 'cgroup.subtree_control');
    if (existsSync(controllers) && readFileSync(controllers, 'utf8').split(/\s+/).includes('cpu')) return { root, v2: true };
  }
  return null;
}

export function createCpuCap(fraction: number): CpuCap {
  if (!(fraction > 0 && fraction <= 64)) throw new Error(`--server-cpu ${fraction}: a number of cores above 0`);
  const h = findHierarchy();
  if (!h) throw new Error('--server-cpu: no cgroup CPU controller found (cgroup v1 /sys/fs/cgroup/cpu, or v2 with "cpu" in cgroup.subtree_control)');
  const dir = path.join(h.root, `symphonic-bench-${process.pid}`);
  const quota = Math.max(1000, Math.round(fraction * PERIOD_US));
  try {
    mkdirSync(dir, { recursive: true });
    if (h.v2) writeFileSync(path.join(dir, 'cpu.max'), `${quota} ${PERIOD_US}`);
    else {
      writeFileSync(path.join(dir, 'cpu.cfs_period_us'), String(PERIOD_US));
      writeFileSync(path.join(dir, 'cpu.cfs_quota_us'), String(quota));
    }
  } catch (e) {
    throw new Error(`--server-cpu: cannot create the cgroup ${dir} (${(e as Error).message}); it needs root or a delegated cgroup`);
  }
  let removed = false;
  const cap: CpuCap = {
    fraction,
    dir,
    add(pid) {
      writeFileSync(path.join(dir, 'cgroup.procs'), String(pid));
    },
    remove() {
      if (removed) return;
      try {
        rmdirSync(dir);
        removed = true;
      } catch {
        // Still holds a process that is exiting: move what is left to the parent, then try again.
        try {
          for (const p of readFileSync(path.join(dir, 'cgroup.procs'), 'utf8').split('\n').filter(Boolean)) writeFileSync(path.join(h.root, 'cgroup.procs'), p);
          rmdirSync(dir);
          removed = true;
        } catch {
          // Left for the next run to see; harmless (an empty group with a quota).
        }
      }
    },
  };
  process.on('exit', () => cap.remove());
  return cap;
}
