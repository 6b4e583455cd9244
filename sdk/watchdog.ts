/**
 * Dead-link detection: the server sends `hb` every `heartbeat` ms, so silence for twice that
 * means the link is gone (a half-open TCP connection can stay "open" for minutes). One timer,
 * not one per frame: `touch()` only records the time, and the timer re-arms for what is left.
 */
export class Watchdog {
  private timer: ReturnType<typeof setTimeout> | undefined;
  private lastRx = 0;

  constructor(private readonly onSilent: (idleMs: number) => void) {}

  /** A frame arrived. */
  touch(): void {
    this.lastRx = Date.now();
  }

  /** Starts watching with the server's heartbeat interval (0 or less: never fires). */
  start(heartbeatMs: number): void {
    this.stop();
    this.touch();
    if (!(heartbeatMs > 0)) return;
    const limit = heartbeatMs * 2;
    const check = (): void => {
      const idle = Date.now() - this.lastRx;
      if (idle >= limit) {
        this.timer = undefined;
        return this.onSilent(idle);
      }
      this.timer = setTimeout(check, limit - idle);
    };
    this.timer = setTimeout(check, limit);
  }

  stop(): void {
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
  }
}
