/** Browser network awareness: `online`/`offline` window events and `navigator.onLine`, when present. */
type NetworkTarget = { addEventListener(t: string, f: () => void): void; removeEventListener(t: string, f: () => void): void };

function target(): NetworkTarget | undefined {
  const w = (globalThis as { window?: NetworkTarget }).window;
  return w && typeof w.addEventListener === 'function' ? w : undefined;
}

/** Listens for network changes; returns the function that stops listening, or null outside a browser. */
export function watchNetwork(onOnline: () => void, onOffline: () => void): (() => void) | null {
  const t = target();
  if (!t) return null;
  t.addEventListener('online', onOnline);
  t.addEventListener('offline', onOffline);
  return () => {
    t.removeEventListener('online', onOnline);
    t.removeEventListener('offline', onOffline);
  };
}

/** True only when the browser says it is offline (unknown counts as online). */
export function isOffline(): boolean {
  const nav = (globalThis as { navigator?: { onLine?: boolean } }).navigator;
  return nav?.onLine === false;
}
