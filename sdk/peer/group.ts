/**
 * Ephemeral group messages (cursors, typing, positions) to the members of a presence topic, over
 * a mesh of peer channels: one channel to each other member, opened by the member whose session id
 * sorts first (so a pair never opens two). Each channel is WebRTC where it comes up and relayed by
 * the gateway where it does not (channel.ts). Past `maxMesh` members (default 8) a full mesh
 * costs every client too many connections: channels are then relayed from the start. Persistent
 * state stays in the gateway's ordered topics; this is for data whose latest value is what counts.
 */
import { Emitter } from '../emitter.ts';
import type { PeerChannel } from './channel.ts';
import type { PeerRequest, SymphonicPeers } from './peers.ts';

/** What a group needs of a subscription: its topic and its presence (the SDK's `Subscription`). */
export interface GroupSubscription {
  readonly topic: string;
  readonly presence: {
    members(): ReadonlyArray<{ session: string }>;
    on(event: 'change', fn: (c: unknown) => void): () => void;
  };
}

/** How long a request from a session not (yet) seen in the topic's presence waits for it. */
const MEMBER_WAIT_MS = 5000;

export interface GroupOptions {
  /** Above this many members, channels are relayed by the gateway from the start (default 8). */
  maxMesh?: number;
  /** `false`: every channel relayed (no WebRTC), e.g. to compare what the gateway carries. */
  webrtc?: boolean;
}

export interface PeerGroupEvents<T> {
  /** Another member's message; `from` is its session. */
  message: { from: string; data: T };
  /** A link to a member changed state (`connecting`, `p2p`, `relayed`, `closed`). */
  link: { session: string; state: string; reason: string };
}

export class PeerGroup<T = unknown> extends Emitter<PeerGroupEvents<T>> {
  private readonly links = new Map<string, PeerChannel<T>>();
  private readonly stops: Array<() => void> = [];
  private closed = false;
  readonly label: string;

  constructor(
    private readonly peers: SymphonicPeers,
    private readonly sub: GroupSubscription,
    private readonly self: () => string | undefined,
    private readonly options: GroupOptions = {},
  ) {
    super();
    this.label = `group:${sub.topic}`;
    this.stops.push(peers.handleLabel(this.label, (req) => this.onRequest(req)));
    this.stops.push(sub.presence.on('change', () => this.sync()));
    this.sync();
  }

  /** Sends `data` to every other member (each once, in order per sender); returns how many links took it. */
  send(data: T): number {
    let n = 0;
    for (const ch of this.links.values()) {
      if (ch.state === 'closed') continue;
      ch.send(data);
      n++;
    }
    return n;
  }

  /** The link to each other member and its state. */
  states(): Record<string, string> {
    const out: Record<string, string> = {};
    for (const [session, ch] of this.links) out[session] = ch.state;
    return out;
  }

  close(): void {
    this.closed = true;
    for (const stop of this.stops.splice(0)) stop();
    for (const ch of this.links.values()) ch.close('left the group');
    this.links.clear();
  }

  private get webrtc(): boolean {
    return this.options.webrtc !== false && this.sub.presence.members().length <= (this.options.maxMesh ?? 8);
  }

  /** Links to the members present now: opens the ones this side owns, closes those of members gone. */
  private sync(): void {
    const me = this.self();
    if (this.closed || me === undefined) return;
    const present = new Set(this.sub.presence.members().map((m) => m.session));
    for (const [session, ch] of this.links) {
      if (!present.has(session)) {
        this.links.delete(session);
        ch.close('left the topic');
      }
    }
    for (const session of present) {
      if (session === me || this.links.has(session) || session > me) continue; // the other side opens
      this.track(session, this.peers.open<T>(session, { label: this.label, webrtc: this.webrtc }));
    }
  }

  private onRequest(req: PeerRequest): void {
    const from = req.from.session;
    const isMember = () => this.sub.presence.members().some((m) => m.session === from);
    const accept = () => {
      this.links.get(from)?.close('replaced');
      this.track(from, req.accept<T>({ webrtc: this.webrtc }));
    };
    if (this.closed) return req.reject('left the group');
    if (isMember()) return accept();
    // Only members of the topic may join its group; the opener may have seen a join that this
    // side's presence brings in its next batch: wait for it, a while.
    const timer = setTimeout(() => {
      off();
      req.reject('not a member of the topic');
    }, MEMBER_WAIT_MS);
    const off = this.sub.presence.on('change', () => {
      if (!isMember() || this.closed) return;
      clearTimeout(timer);
      off();
      accept();
    });
  }

  private track(session: string, ch: PeerChannel<T>): void {
    this.links.set(session, ch);
    ch.on('message', (data) => this.emit('message', { from: session, data }));
    ch.on('state', ({ newState, reason }) => {
      this.emit('link', { session, state: newState, reason });
      if (newState === 'closed' && this.links.get(session) === ch) this.links.delete(session);
    });
  }
}
