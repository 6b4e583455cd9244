/**
 * SymphonicClient against an in-memory fake server (./fake-socket.ts), for the SDK's unit tests:
 * the test plays the gateway frame by frame, under fake timers. `useFakeServer()` gives each test
 * a fresh server and closes the test's client afterwards.
 */
import { afterEach, beforeEach, expect, vi } from 'vitest';
import { SymphonicClient, type ClientOptions } from '../../../sdk/index.ts';
import { FakeServer, type FakeSocket } from './fake-socket.ts';

/** The current test's fake server (a live binding: a new one per test). */
export let server: FakeServer;
let client: SymphonicClient | undefined;

export function useFakeServer(): void {
  beforeEach(() => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'Date'] });
    server = new FakeServer();
  });
  afterEach(() => {
    client?.close();
    client = undefined;
    vi.useRealTimers();
    vi.restoreAllMocks();
  });
}

/** Makes `c` the test's client, closed after the test. */
export function track(c: SymphonicClient): SymphonicClient {
  client = c;
  return c;
}

/** A client of the fake server, not connected yet. */
export function make(options: ClientOptions = {}): SymphonicClient {
  return track(new SymphonicClient('ws://fake/ws', { WebSocket: server.WebSocket, networkEvents: false, ...options }));
}

/** A client connected to the fake server (welcomed), and its socket. */
export function connected(options: ClientOptions = {}): { c: SymphonicClient; s: FakeSocket } {
  const c = make(options);
  c.connect();
  const s = server.accept();
  expect(c.state).toBe('connected');
  return { c, s };
}

/** Answers the newest `sub` frame on socket `s`. */
export function answerSub(s: FakeSocket, reply: Record<string, unknown>) {
  const sub = s.lastOf('sub');
  s.deliver({ t: 'subscribed', id: sub.id, topic: sub.topic, epoch: 'e1', wasRecovering: 'since' in sub, recovered: false, seq: 0, ...reply });
  return sub;
}
