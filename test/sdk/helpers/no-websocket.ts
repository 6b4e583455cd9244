/** Runs `fn` with no global WebSocket (as in Node 20 without `ws`), then puts it back. */
export function withoutGlobalWebSocket(fn: () => void): void {
  const g = globalThis as { WebSocket?: unknown };
  const saved = g.WebSocket;
  delete g.WebSocket;
  try {
    fn();
  } finally {
    if (saved) g.WebSocket = saved;
  }
}
