/** A change notifier: anything that changes test-visible state calls `bump()`. */
export class Changes {
  private readonly waiters = new Set<() => void>();

  bump(): void {
    for (const w of [...this.waiters]) w();
  }

  /** Resolves once `check()` returns true (checked now and on every change), else fails after `timeoutMs`. */
  until(check: () => boolean, timeoutMs: number, what: string | (() => string)): Promise<void> {
    return new Promise((resolve, reject) => {
      const waiter = () => {
        let ok: boolean;
        try {
          ok = check();
        } catch (e) {
          cleanup();
          return reject(e);
        }
        if (!ok) return;
        cleanup();
        resolve();
      };
      const timer = setTimeout(() => {
        cleanup();
        reject(new Error(`timed out after ${timeoutMs} ms waiting for ${typeof what === 'string' ? what : what()}`));
      }, timeoutMs);
      const cleanup = () => {
        clearTimeout(timer);
        this.waiters.delete(waiter);
      };
      this.waiters.add(waiter);
      waiter();
    });
  }
}
