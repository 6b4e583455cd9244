/**
 * Seconds a process's main thread has spent runnable but waiting for a CPU (the second field of
 * /proc/<pid>/schedstat). On a machine with more runnable threads than cores, a generator or a
 * server that is not busy itself still reads and writes late by this much: latency measured there
 * includes the wait.
 */
import { readFileSync } from 'node:fs';

export function runQueueWaitSeconds(pid: number): number {
  try {
    return Number(readFileSync(`/proc/${pid}/schedstat`, 'latin1').split(' ')[1]) / 1e9;
  } catch {
    return 0;
  }
}
