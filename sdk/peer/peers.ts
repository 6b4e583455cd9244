/**
 * Peer channels of one client: `open(session)` asks another session for a channel; the other
 * side's app decides on the `request` event. Signals travel as direct messages through the
 * gateway (signal.ts), which also relays the data when WebRTC cannot (channel.ts).
 *
 * An add-on to the client rather than part of it, so apps without peer-to-peer do not ship it
 * (the core bundle has a size budget): `new SymphonicPeers(client)`.
 */
import { Emitter } from '../emitter.ts';
import { PeerChannel, type PeerLink } from './channel.ts';
import { PeerGroup, type GroupOptions, type GroupSubscription } from './group.ts';
import { signalOf, wrap, type Signal } from './signal.ts';

/** What the peer layer uses of a SymphonicClient. */
export interface PeerClient {
  /** A direct message to a session (docs/protocol.md section 16). */
  send(to: { session: string }, data: unknown): Promise<unknown>;
  /** Peer signals addressed to this session (direct messages the client keeps from its `direct` event). */
  on(event: 'signal', fn: (m: { from?: { session: string; user?: string }; data: unknown }) => void): () => void;
  /** This client's session (the SDK client's `session`), once it has one. */
  readonly session?: { id: string } | undefined;
  iceServers(): Promise<{ servers: ReadonlyArray<{ urls: string[]; username?: string; credential?: string }>; expires?: number }>;
}

export interface PeerOptions {
  /** The RTCPeerConnection class; defaults to the global one. In Node pass one (e.g. from a WebRTC package); without any, channels are relayed. */
  RTCPeerConnection?: new (
    config: RTCConfiguration,
  ) => RTCPeerConnection;
  /** No data channel this long after both sides agreed: relay through the gateway (ms, default 10000). */
  p2pTimeoutMs?: number;
  /** The other side did not accept or refuse this long after `open`: the channel closes (ms, default 30000). */
  answerTimeoutMs?: number;
  /** `relay`: only TURN candidates (test the TURN path, or hide addresses); default `all`. */
  iceTransportPolicy?: RTCIceTransportPolicy;
  /** ICE servers to use instead of asking the gateway (`client.iceServers()`). */
  iceServers?: RTCIceServer[];
}

/** Another session asks for a channel: accept or reject it (unanswered requests are refused after the answer timeout). */
export interface PeerRequest {
  readonly from: { session: string; user?: string };
  readonly label: string | undefined;
  /** `webrtc: false`: this channel is relayed by the gateway from the start. */
  accept<T = unknown>(options?: { webrtc?: boolean }): PeerChannel<T>;
  reject(reason?: string): void;
}

export interface PeersEvents {
  request: PeerRequest;
  error: Error;
}

let counter = 0;
const newChannelId = () => `${Date.now().toString(36)}${(counter++).toString(36)}${Math.random().toString(36).slice(2, 8)}`;

export class SymphonicPeers extends Emitter<PeersEvents> {
  private readonly channels = new Map<string, { channel: PeerChannel<any>; peer: string }>();
  private readonly stopListening: () => void;
  private readonly rtc: PeerOptions['RTCPeerConnection'];
  private ice: { servers: RTCIceServer[]; until: number } | null = null;
  private readonly labelled = new Map<string, (req: PeerRequest) => void>();
  /** Channels this side opened that the other side has not accepted yet: their answer timers. */
  private readonly unanswered = new Map<string, ReturnType<typeof setTimeout>>();

  constructor(
    private readonly client: PeerClient,
    private readonly options: PeerOptions = {},
  ) {
    super();
    this.rtc = options.RTCPeerConnection ?? (globalThis as { RTCPeerConnection?: PeerOptions['RTCPeerConnection'] }).RTCPeerConnection;
    this.stopListening = client.on('signal', (m) => {
      const s = signalOf(m.data);
      if (s && m.from) this.onSignal(m.from, s).catch((e: Error) => this.emit('error', e));
    });
  }

  /** Asks session `session` for a channel; its state goes `connecting` -> `p2p` or `relayed`, or `closed` when refused. */
  open<T = unknown>(session: string, options: { label?: string; webrtc?: boolean } = {}): PeerChannel<T> {
    const ch = newChannelId();
    const channel = new PeerChannel<T>(ch, session, undefined, options.label, true, this.link(session, options.webrtc));
    this.channels.set(ch, { channel, peer: session });
    // Until the other side accepts: the path search that follows has its own bound (p2pTimeoutMs).
    const answerTimer = setTimeout(() => channel.state === 'connecting' && channel.close('no answer'), this.options.answerTimeoutMs ?? 30_000);
    this.unanswered.set(ch, answerTimer);
    channel.on('state', ({ newState }) => newState !== 'connecting' && this.answered(ch));
    this.signal(session, { ch, op: 'open', ...(options.label === undefined ? {} : { label: options.label }) }).catch((e: Error) => {
      this.emit('error', e);
      channel.close(`could not reach the session: ${e.message}`);
    });
    return channel;
  }

  /** The channels open now. */
  list(): PeerChannel<any>[] {
    return [...this.channels.values()].map((c) => c.channel);
  }

  /**
   * Ephemeral messages (cursors, typing, positions) to the members of a presence topic this
   * client is subscribed to, over a mesh of peer channels (group.ts).
   */
  group<T = unknown>(sub: GroupSubscription, options: GroupOptions = {}): PeerGroup<T> {
    return new PeerGroup<T>(this, sub, () => this.client.session?.id, options);
  }

  /** Closes every channel and stops listening. */
  close(): void {
    for (const { channel } of [...this.channels.values()]) channel.close('closed');
    this.stopListening();
  }

  private async onSignal(from: { session: string; user?: string }, s: Signal): Promise<void> {
    const known = this.channels.get(s.ch);
    if (known) {
      // Only the session at the other end may drive a channel.
      if (known.peer !== from.session) return;
      if (s.op === 'accept') {
        this.answered(s.ch);
        return known.channel.begin();
      }
      return known.channel.onSignal(s);
    }
    if (s.op !== 'open') return; // a late signal of a channel already closed
    const byLabel = s.label === undefined ? undefined : this.labelled.get(s.label);
    if (!byLabel && this.listenerCount('request') === 0)
      return void this.signal(from.session, { ch: s.ch, op: 'reject', reason: 'not accepting peer channels' }).catch(() => {});
    let answered = false;
    const timer = setTimeout(() => request.reject('no answer'), this.options.answerTimeoutMs ?? 30_000);
    const request: PeerRequest = {
      from,
      label: s.label,
      accept: <T>(options: { webrtc?: boolean } = {}) => {
        if (answered) throw new Error('peer request already answered');
        answered = true;
        clearTimeout(timer);
        const channel = new PeerChannel<T>(s.ch, from.session, from.user, s.label, false, this.link(from.session, options.webrtc));
        this.channels.set(s.ch, { channel, peer: from.session });
        this.signal(from.session, { ch: s.ch, op: 'accept' }).then(
          () => channel.begin(),
          (e: Error) => channel.close(`could not answer: ${e.message}`),
        );
        return channel;
      },
      reject: (reason) => {
        if (answered) return;
        answered = true;
        clearTimeout(timer);
        void this.signal(from.session, { ch: s.ch, op: 'reject', ...(reason === undefined ? {} : { reason }) }).catch(() => {});
      },
    };
    if (byLabel) byLabel(request);
    else this.emit('request', request);
  }

  /**
   * A group of a presence topic's members (group.ts): requests labelled `label` go to `handler`
   * instead of the `request` event; returns the function that stops that.
   */
  handleLabel(label: string, handler: (req: PeerRequest) => void): () => void {
    this.labelled.set(label, handler);
    return () => this.labelled.get(label) === handler && this.labelled.delete(label);
  }

  private answered(ch: string): void {
    clearTimeout(this.unanswered.get(ch));
    this.unanswered.delete(ch);
  }

  private signal(session: string, s: Signal): Promise<void> {
    return this.client.send({ session }, wrap(s)).then(() => {});
  }

  private link(session: string, webrtc = true): PeerLink {
    return {
      signal: (s) => this.signal(session, s),
      rtcConfig: () => this.rtcConfig(),
      rtc: webrtc ? this.rtc : undefined,
      p2pTimeoutMs: this.options.p2pTimeoutMs ?? 10_000,
      closed: (ch) => this.channels.delete(ch),
    };
  }

  /** ICE servers from the options, else from the gateway (cached until the TURN credentials near expiry). */
  private async rtcConfig(): Promise<RTCConfiguration> {
    const policy = this.options.iceTransportPolicy ? { iceTransportPolicy: this.options.iceTransportPolicy } : {};
    if (this.options.iceServers) return { iceServers: this.options.iceServers, ...policy };
    if (!this.ice || Date.now() > this.ice.until) {
      const r = await this.client.iceServers();
      const servers = r.servers.map((s) => ({ ...s, urls: [...s.urls] }));
      // Refreshed a minute before the credentials expire; without TURN, every 10 minutes.
      this.ice = { servers, until: r.expires === undefined ? Date.now() + 600_000 : r.expires * 1000 - 60_000 };
    }
    return { iceServers: this.ice.servers, ...policy };
  }
}
