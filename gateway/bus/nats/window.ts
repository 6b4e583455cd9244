/**
 * Retention windows narrower than the stream's. The stream stores every topic at the largest
 * window of the deployment (one stream, and JetStream limits are per stream); a namespace with a
 * smaller `history` gets it applied when reading: messages outside its window count as dropped,
 * exactly as if retention had removed them, so resume and history answer as the memory engine does.
 */
import type { BusMessage } from '../bus.ts';
import type { HistoryWindow } from './options.ts';

/**
 * The part of `after` still inside the window: its last `size` messages, none older than `ageMs`.
 * `trimmed` says whether anything right after the position fell out.
 */
export function clipToWindow(after: readonly BusMessage[], w: HistoryWindow, now = Date.now()): { messages: readonly BusMessage[]; trimmed: boolean } {
  if (!w.narrower) return { messages: after, trimmed: false };
  let start = Math.max(0, after.length - w.size);
  const oldest = now - w.ageMs;
  // Publishers' clocks may disagree: one message newer than the limit keeps what follows it.
  for (let i = after.length - 1; i >= start; i--) {
    if (after[i]!.ts < oldest) {
      start = i + 1;
      break;
    }
  }
  return { messages: start === 0 ? after : after.slice(start), trimmed: start > 0 };
}

/** Whether `after` (every message after a position, oldest first) lies wholly inside the window. */
export function insideWindow(after: readonly BusMessage[], w: HistoryWindow, now = Date.now()): boolean {
  return !clipToWindow(after, w, now).trimmed;
}
