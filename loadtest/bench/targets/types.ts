/**
 * What a benchmark target is: a server to start as a child process, and the client side of its
 * protocol. Adding a target (e.g. the gateway on the NATS engine) = one more entry in index.ts.
 */
import type { ServerChild } from '../../lib/proc.ts';
import type { RawWs } from '../../lib/raw-ws.ts';

export interface BenchClient {
  /** Path (with query) that subscriber and publisher sockets connect to. */
  readonly subscriberPath: string;
  readonly publisherPath: string;
  /** Subprotocol offered on every socket, if any. */
  readonly subprotocol?: string;
  /**
   * Count-only sockets count data messages of at least this many bytes and ignore shorter ones,
   * so heartbeats are left out without decoding anything. Sampled sockets check the assumption.
   */
  readonly minCountBytes: number;
  /** Takes a freshly upgraded socket (in decode mode) to the point where it receives the topic. */
  subscribe(ws: RawWs): Promise<void>;
  /** Takes a freshly upgraded socket (in decode mode) to the point where it may publish. */
  preparePublisher(ws: RawWs): Promise<void>;
  /** The payload of one publish (a binary frame) carrying the send time (performance.now(), ms) and a sequence. */
  encodePublish(sentAt: number, seq: number): Uint8Array;
  /** The send time carried by a delivered message, or undefined if it is not a bench message. */
  sentAt(payload: Buffer): number | undefined;
  /** A problem report in a message the publisher received (e.g. an error frame), or undefined. */
  publisherNotice(payload: Buffer): string | undefined;
}

export interface Target {
  readonly name: string;
  readonly description: string;
  /** Starts the server on 127.0.0.1:port and resolves once it listens. */
  start(port: number): Promise<ServerChild>;
  /** The client side, for one topic. */
  client(topic: string): BenchClient;
}
