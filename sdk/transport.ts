/**
 * The transport seam: anything shaped like a WebSocket. Browsers use `globalThis.WebSocket`; in
 * Node 20 (no global WebSocket) pass the `ws` package's class as the `WebSocket` option; tests
 * pass an in-memory fake. The SDK only uses the members below.
 */
export interface SocketLike {
  binaryType: string;
  /** The subprotocol the server picked ('' when none). */
  readonly protocol: string;
  onopen: ((ev: unknown) => void) | null;
  onmessage: ((ev: { data: unknown }) => void) | null;
  onclose: ((ev: { code: number; reason: string }) => void) | null;
  onerror: ((ev: unknown) => void) | null;
  send(data: string | Uint8Array): void;
  close(code?: number, reason?: string): void;
}

/** A WebSocket class: the browser's, `ws`'s, or a fake. */
export type WebSocketConstructor = new (url: string, protocols?: string | string[]) => object;

export function defaultWebSocket(): WebSocketConstructor | undefined {
  return (globalThis as { WebSocket?: WebSocketConstructor }).WebSocket;
}

export function openSocket(Ctor: WebSocketConstructor, url: string, subprotocol: string): SocketLike {
  const socket = new Ctor(url, [subprotocol]) as SocketLike;
  socket.binaryType = 'arraybuffer';
  return socket;
}
