/**
 * One peer channel: messages to one other session, over a WebRTC data channel when one comes up,
 * else relayed by the gateway as direct messages; the app's code is the same on either path.
 * States and switches: state.ts; exactly once and in order across switches: reliable.ts; the
 * signals: signal.ts. Created by SymphonicPeers (peers.ts), never directly.
 */
import type { StateChange } from '../connection-state.ts';
import { Emitter } from '../emitter.ts';
import { Outbox, Reorder } from './reliable.ts';
import type { Signal } from './signal.ts';
import { nextPeerState, type PeerEvent, type PeerState } from './state.ts';

export interface PeerChannelEvents<T> {
  state: StateChange<PeerState>;
  message: T;
  /** Something went wrong that the channel survived (a relay send retried, a bad remote message). */
  error: Error;
}

/** What a channel needs from its surroundings (peers.ts provides it). */
export interface PeerLink {
  /** Sends a signal to the other session through the gateway (a direct message). */
  signal(s: Signal): Promise<void>;
  /** RTCPeerConnection's configuration (ICE servers from the gateway), or null: no WebRTC here. */
  rtcConfig(): Promise<RTCConfiguration | null>;
  rtc: (new (config: RTCConfiguration) => RTCPeerConnection) | undefined;
  /** No data channel this long after the path search began: relay. */
  p2pTimeoutMs: number;
  /** The channel is closed: forget it. */
  closed(ch: string): void;
}

/** Acknowledge after this many messages, or this long after the first unacknowledged one. */
const ACK_EVERY = 32;
const ACK_AFTER_MS = 200;
/** A relay send that failed (gateway away, rate limit) is tried again after this. */
const RELAY_RETRY_MS = 1000;

export class PeerChannel<T = unknown> extends Emitter<PeerChannelEvents<T>> {
  private _state: PeerState = 'connecting';
  private readonly outbox = new Outbox<T>();
  private readonly inbox = new Reorder<T>();
  private pc: RTCPeerConnection | null = null;
  private dc: RTCDataChannel | null = null;
  /** WebRTC signals that came before this side made its peer connection (begin() handles them). */
  private beforePc: Signal[] = [];
  /** This side will make a peer connection but has not yet (begin() not called or not done): WebRTC signals wait. */
  private webrtcPending: boolean;
  /** Candidates that came before the remote description. */
  private early: RTCIceCandidateInit[] = [];
  private remoteSet = false;
  private p2pTimer: ReturnType<typeof setTimeout> | undefined;
  private ackTimer: ReturnType<typeof setTimeout> | undefined;
  private retryTimer: ReturnType<typeof setTimeout> | undefined;
  /** Messages delivered since the last ack we sent. */
  private unackedIn = 0;
  /** How far the relay has taken our messages (numbers handed to the gateway, in order). */
  private relayedUpTo = 0;
  private relaying: Promise<void> | null = null;

  constructor(
    /** The channel's id (chosen by the side that opened it). */
    readonly id: string,
    /** The other session. */
    readonly peer: string,
    /** The other session's user, when it has one. */
    readonly user: string | undefined,
    readonly label: string | undefined,
    /** This side opened the channel (it makes the WebRTC offer). */
    private readonly opener: boolean,
    private readonly link: PeerLink,
  ) {
    super();
    this.webrtcPending = link.rtc !== undefined;
  }

  get state(): PeerState {
    return this._state;
  }

  /** Messages sent that the other side has not acknowledged yet. */
  get pending(): number {
    return this.outbox.unacked().length;
  }

  /** Sends `data` (JSON-compatible) to the other side: once, in order, whichever path carries it. */
  send(data: T): void {
    if (this._state === 'closed') throw new Error('peer channel is closed');
    const m = this.outbox.number(data, true);
    if (this._state === 'p2p' && this.dc?.readyState === 'open') this.dc.send(JSON.stringify(m));
    else if (this._state === 'relayed') this.pumpRelay();
    // connecting: kept in the outbox until a path is chosen
  }

  /** Closes the channel on both sides. */
  close(reason = 'closed'): void {
    if (this._state === 'closed') return;
    // Said on the data channel too: it is faster than the relay, and its own close must not read as a failure there.
    if (this.dc?.readyState === 'open') this.dc.send(JSON.stringify({ c: reason }));
    void this.link.signal({ ch: this.id, op: 'close', reason }).catch(() => {});
    this.apply({ type: 'close', reason });
  }

  // ---- called by peers.ts ----------------------------------------------------------------------

  /** Both sides agreed: look for a WebRTC path (the opener offers), relaying if none comes in time. */
  async begin(): Promise<void> {
    const config = this.link.rtc ? await this.link.rtcConfig().catch(() => null) : null;
    if (!config) {
      // No peer connection will come: nothing waits for one.
      this.webrtcPending = false;
      this.beforePc = [];
    }
    if (this._state === 'closed') return;
    if (!config || !this.link.rtc) return this.apply({ type: 'p2p-failed', reason: 'WebRTC is not available' });
    this.p2pTimer = setTimeout(() => this.apply({ type: 'p2p-failed', reason: `no data channel within ${this.link.p2pTimeoutMs} ms` }), this.link.p2pTimeoutMs);
    let pc: RTCPeerConnection;
    try {
      pc = new this.link.rtc(config);
    } catch (e) {
      this.webrtcPending = false;
      this.beforePc = [];
      return this.apply({ type: 'p2p-failed', reason: `RTCPeerConnection failed: ${(e as Error).message}` });
    }
    this.pc = pc;
    this.webrtcPending = false;
    pc.onicecandidate = (e) => void this.link.signal({ ch: this.id, op: 'ice', candidate: e.candidate ? e.candidate.toJSON() : null }).catch(() => {});
    pc.onconnectionstatechange = () => {
      if (pc.connectionState === 'failed') this.apply({ type: 'p2p-failed', reason: 'ICE failed' });
    };
    if (this.opener) {
      this.attach(pc.createDataChannel('symphonic', { ordered: true }));
      await pc.setLocalDescription(await pc.createOffer());
      await this.link.signal({ ch: this.id, op: 'offer', sdp: pc.localDescription!.sdp });
    } else {
      pc.ondatachannel = (e) => this.attach(e.channel);
    }
    // The other side may have signalled before this side had its peer connection (its offer can
    // overtake our ICE-server lookup): handle those now, in the order they came.
    for (const early = this.beforePc.splice(0); early.length > 0; ) await this.onSignal(early.shift()!);
  }

  /** A signal from the other side for this channel. */
  async onSignal(s: Signal): Promise<void> {
    if (this._state === 'closed') return;
    if (!this.pc && this.webrtcPending && (s.op === 'offer' || s.op === 'answer' || s.op === 'ice')) return void this.beforePc.push(s);
    switch (s.op) {
      case 'offer':
      case 'answer': {
        const pc = this.pc;
        if (!pc) return;
        await pc.setRemoteDescription({ type: s.op, sdp: s.sdp });
        this.remoteSet = true;
        for (const c of this.early.splice(0)) await pc.addIceCandidate(c).catch(() => {});
        if (s.op === 'offer') {
          await pc.setLocalDescription(await pc.createAnswer());
          await this.link.signal({ ch: this.id, op: 'answer', sdp: pc.localDescription!.sdp });
        }
        return;
      }
      case 'ice':
        if (!this.pc || s.candidate === null) return;
        if (!this.remoteSet) return void this.early.push(s.candidate);
        return void (await this.pc.addIceCandidate(s.candidate).catch(() => {}));
      case 'data':
        return this.receive(s.n, s.d as T);
      case 'ack':
        return this.outbox.ack(s.n);
      case 'close':
      case 'reject':
        return this.apply({ type: 'close', reason: s.reason ?? (s.op === 'reject' ? 'refused' : 'closed by the other side') });
    }
  }

  // ---- inside ----------------------------------------------------------------------------------

  private attach(dc: RTCDataChannel): void {
    this.dc = dc;
    dc.onopen = () => this.apply({ type: 'p2p-open' });
    dc.onclose = () => {
      if (this.dc === dc) this.apply({ type: 'p2p-failed', reason: 'data channel closed' });
    };
    dc.onmessage = (e) => {
      let m: { n?: unknown; d?: unknown; a?: unknown; c?: unknown };
      try {
        m = JSON.parse(String(e.data)) as typeof m;
      } catch {
        return this.emit('error', new Error('peer channel: undecodable data channel message'));
      }
      if (typeof m.c === 'string') this.apply({ type: 'close', reason: m.c || 'closed by the other side' });
      else if (typeof m.a === 'number') this.outbox.ack(m.a);
      else if (typeof m.n === 'number') this.receive(m.n, m.d as T);
    };
  }

  private receive(n: number, d: T): void {
    let ready: T[];
    try {
      ready = this.inbox.accept(n, d);
    } catch (e) {
      return this.emit('error', e as Error);
    }
    for (const m of ready) {
      this.unackedIn++;
      this.emit('message', m);
    }
    if (this.unackedIn >= ACK_EVERY) this.sendAck();
    else if (this.unackedIn > 0 && this.ackTimer === undefined) this.ackTimer = setTimeout(() => this.sendAck(), ACK_AFTER_MS);
  }

  private sendAck(): void {
    clearTimeout(this.ackTimer);
    this.ackTimer = undefined;
    if (this.unackedIn === 0 || this._state === 'closed') return;
    this.unackedIn = 0;
    const n = this.inbox.delivered;
    if (this.dc?.readyState === 'open') this.dc.send(JSON.stringify({ a: n }));
    else void this.link.signal({ ch: this.id, op: 'ack', n }).catch(() => {});
  }

  private apply(event: PeerEvent): void {
    const oldState = this._state;
    const next = nextPeerState(oldState, event);
    if (next === null) return;
    this._state = next;
    if (next === 'p2p') {
      clearTimeout(this.p2pTimer);
      // Whatever waited (connecting) or is not acknowledged (back from the relay) goes over the data channel;
      // the other side drops what it already has.
      for (const m of this.outbox.unacked()) this.dc!.send(JSON.stringify(m));
    } else if (next === 'relayed') {
      clearTimeout(this.p2pTimer);
      // Everything not acknowledged may be lost with the data channel: the relay carries it again.
      this.relayedUpTo = 0;
      this.pumpRelay();
    } else if (next === 'closed') {
      this.stop();
    }
    const reason = event.type === 'p2p-open' ? 'data channel open' : event.reason;
    this.emit('state', { oldState, newState: next, code: 0, reason });
  }

  /** Hands every unacknowledged message the relay has not taken yet to the gateway, in order, one at a time. */
  private pumpRelay(): void {
    // Nothing to hand over: return before starting, or the pump would finish synchronously (its
    // `finally` running before `relaying` is assigned) and stay marked as running forever.
    if (this.relaying || this._state !== 'relayed' || !this.nextForRelay()) return;
    this.relaying = (async () => {
      try {
        for (let m = this.nextForRelay(); m && this._state === 'relayed'; m = this.nextForRelay()) {
          await this.link.signal({ ch: this.id, op: 'data', n: m.n, d: m.d });
          this.relayedUpTo = m.n;
        }
      } catch (e) {
        this.emit('error', e as Error);
        if (this._state === 'relayed') this.retryTimer = setTimeout(() => this.pumpRelay(), RELAY_RETRY_MS);
      } finally {
        this.relaying = null;
      }
    })();
  }

  private nextForRelay() {
    return this.outbox.unacked().find((m) => m.n > this.relayedUpTo);
  }

  private stop(): void {
    clearTimeout(this.p2pTimer);
    clearTimeout(this.ackTimer);
    clearTimeout(this.retryTimer);
    const { dc, pc } = this;
    this.dc = null;
    this.pc = null;
    try {
      dc?.close();
      pc?.close();
    } catch {
      // already closed
    }
    this.link.closed(this.id);
  }
}
