/**
 * What a benchmark target is: a server to start as a child process, and the client side of its
 * protocol. Adding a target (e.g. the gateway on the NATS engine) = one more entry in index.ts.
 */
import type { ServerChild } from '../../lib/proc.ts';
import type { RawWs } from '../../lib/raw-ws.ts';
import type { PayloadStreamFactory } from '../../lib/ws-frames.ts';
import type { SinkSpec } from '../../native/spec.ts';

export interface BenchClient {
  /** Path (with query) that subscriber and publisher sockets connect to. */
  readonly subscriberPath: string;
  readonly publisherPath: string;
  /**
   * Set when the publisher publishes straight to NATS instead of over a WebSocket: a JetStream
   * publish to this subject (the publisher socket and `preparePublisher` are then unused).
   */
  readonly natsSubject?: string;
  /** Subprotocol offered on every socket, if any. */
  readonly subprotocol?: string;
  /**
   * Count-only sockets count data messages of at least this many bytes and ignore shorter ones,
   * so heartbeats are left out without decoding anything. Sampled sockets check the assumption.
   */
  readonly minCountBytes: number;
  /**
   * Called with every data message shorter than `minCountBytes`, on count-only sockets too (they
   * are cheap to read: such messages are rare), e.g. to answer a protocol-level ping (Engine.IO).
   */
  onShortMessage?(ws: RawWs, payload: Buffer, binary: boolean): void;
  /**
   * For a protocol that runs as a byte stream over the frames (NATS over WebSocket: several
   * messages per frame): every socket parses it, and the stream counts deliveries itself
   * (`minCountBytes` then plays no part in counting). See lib/raw-ws.ts PayloadStream.
   */
  readonly stream?: PayloadStreamFactory;
  /** The publisher sends text frames (default binary): Socket.IO reads a binary frame as an attachment. */
  readonly textPublish?: boolean;
  /**
   * The subscriber handshake for the native sink (loadtest/native/), which holds the count-only
   * sockets with `--generator native`: the same steps as `subscribe`, as bytes to send and replies
   * to wait for, plus `onShortMessage`'s ping rule and `stream`'s mode. Without it the target's
   * count-only sockets stay in Node.
   */
  readonly sink?: SinkSpec;
  /** Takes a freshly upgraded socket (in decode mode) to the point where it receives the topic. */
  subscribe(ws: RawWs): Promise<void>;
  /** Takes a freshly upgraded socket (in decode mode) to the point where it may publish. */
  preparePublisher(ws: RawWs): Promise<void>;
  /** The payload of one publish (a binary frame, or text with `textPublish`) carrying the send time (performance.now(), ms) and a sequence. */
  encodePublish(sentAt: number, seq: number): Uint8Array;
  /** The send time carried by a delivered message, or undefined if it is not a bench message. */
  sentAt(payload: Buffer): number | undefined;
  /** A problem report in a message the publisher received (e.g. an error frame), or undefined. */
  publisherNotice(payload: Buffer): string | undefined;
}

/** A started target: the server child, and what else the target needed (nats-server). */
export interface StartedTarget extends ServerChild {
  /**
   * Helper processes the target runs on this machine besides the server (nats-server). Their CPU
   * counts as server-side: it is added into `srv CPU %` and `srv ns/dlv`, and shown on its own.
   */
  readonly helperPids?: readonly number[];
  /** URL of the NATS server the target uses, for a publisher that publishes to NATS. */
  readonly natsUrl?: string;
}

export interface Target {
  readonly name: string;
  readonly description: string;
  /** The target this one is compared with (deliveries/s and CPU per delivery ratios); none for a baseline. */
  readonly baseline?: string;
  /** Issue target for the CPU-per-delivery ratio against the baseline, part of the verdict when set. */
  readonly maxCpuRatio?: number;
  /**
   * A peer (another product, measured for reference: Socket.IO, nats-server): compared with its
   * baseline like the others, but with no issue target, so no verdict.
   */
  readonly peer?: boolean;
  /** Starts the server on 127.0.0.1:port (and whatever it needs) and resolves once it listens. */
  start(port: number): Promise<StartedTarget>;
  /** The client side, for one topic. */
  client(topic: string): BenchClient;
}
