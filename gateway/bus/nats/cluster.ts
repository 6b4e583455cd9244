/**
 * The deployment's gateways over core NATS (no JetStream: nothing here is stored).
 *
 *   `<prefix>.gateways.hb`             every gateway publishes a heartbeat every `intervalMs`:
 *                                      `{v, node, instance, intervalMs, bus, report}` (JSON, < 1 KB),
 *                                      and `{..., bye: true}` when it leaves cleanly. Each keeps the
 *                                      others' latest; one not heard from for CLUSTER_MISSED_BEATS
 *                                      of its intervals is dropped. Hearing a gateway for the first
 *                                      time makes a gateway beat at once, so a newcomer learns the
 *                                      roster within a round trip instead of an interval.
 *   `<prefix>.gateways.admin.<node>`   requests for one gateway (node ids hashed: they may hold dots)
 *   `<prefix>.gateways.admin.all`      requests for every gateway, answered on the reply inbox;
 *                                      answers are collected until every known peer has answered
 *                                      or the timeout.
 *
 * Whoever may publish on `<prefix>.gateways.>` can ask gateways to disconnect clients: grant it
 * to the gateways' NATS user only (README.md, "Names").
 */
import { createHash } from 'node:crypto';
import { createInbox, nuid, type Msg, type NatsConnection, type Subscription } from 'nats';
import type { Logger } from '../../log.ts';
import {
  CLUSTER_MISSED_BEATS,
  type BusCluster,
  type ClusterAnswer,
  type ClusterBusInfo,
  type ClusterMember,
  type ClusterOptions,
  type NodeReport,
} from '../bus.ts';
import { selfMember, serveHere } from '../cluster.ts';
import { withTimeout } from './requests.ts';

interface Beat {
  readonly v: 1;
  readonly node: string;
  /** Tells two processes with the same node id apart (a misconfiguration worth a warning). */
  readonly instance: string;
  readonly intervalMs: number;
  readonly bus?: ClusterBusInfo;
  readonly report?: NodeReport;
  readonly bye?: true;
}

interface Request {
  readonly op: string;
  readonly body: unknown;
  /** The asking gateway's instance: it answers its own broadcast locally, not over NATS. */
  readonly from: string;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();
const encode = (x: unknown) => encoder.encode(JSON.stringify(x));
function decode(data: Uint8Array): unknown {
  try {
    return JSON.parse(decoder.decode(data));
  } catch {
    return undefined;
  }
}

/** Subjects must not carry dots or spaces from a node id: address nodes by a hash of it. */
export const clusterNodeToken = (node: string) => createHash('sha256').update(node).digest('hex').slice(0, 16);

export function clusterSubjects(prefix: string) {
  return {
    heartbeat: `${prefix}.gateways.hb`,
    node: (node: string) => `${prefix}.gateways.admin.${clusterNodeToken(node)}`,
    all: `${prefix}.gateways.admin.all`,
  };
}

function isBeat(b: unknown): b is Beat {
  const x = b as Beat;
  return (
    typeof x === 'object' &&
    x !== null &&
    x.v === 1 &&
    typeof x.node === 'string' &&
    x.node.length > 0 &&
    x.node.length <= 64 &&
    typeof x.instance === 'string' &&
    typeof x.intervalMs === 'number' &&
    x.intervalMs > 0 &&
    (x.bye === true || (typeof x.report === 'object' && x.report !== null && typeof x.bus === 'object' && x.bus !== null))
  );
}

function answerOf(msg: Msg): ClusterAnswer | undefined {
  const a = decode(msg.data) as ClusterAnswer | undefined;
  return a && typeof a === 'object' && typeof a.node === 'string' && typeof a.ok === 'boolean' ? a : undefined;
}

/**
 * Who else is in the roster, as it changes (presence drops a gateway's members when it goes).
 * `instance` is this gateway's own instance id, shared with whoever listens.
 */
export interface RosterWatch {
  readonly instance: string;
  appeared(instance: string): void;
  gone(instance: string): void;
}

interface Peer {
  beat: Beat;
  lastSeen: number;
  /** Fires when the peer has missed CLUSTER_MISSED_BEATS beats: dropped then, not at the next tick. */
  timer: NodeJS.Timeout;
}

export function joinNatsCluster(
  nc: NatsConnection,
  prefix: string,
  o: ClusterOptions,
  info: () => ClusterBusInfo,
  log: Logger,
  watch?: RosterWatch,
): BusCluster {
  const subjects = clusterSubjects(prefix);
  const instance = watch?.instance ?? nuid.next();
  const peers = new Map<string, Peer>();
  let left = false;
  let warnedTwin = false;

  const stale = (p: Peer, now: number) => now - p.lastSeen > CLUSTER_MISSED_BEATS * p.beat.intervalMs;
  function drop(node: string): void {
    const p = peers.get(node);
    if (!p) return;
    clearTimeout(p.timer);
    peers.delete(node);
    watch?.gone(p.beat.instance);
  }
  function prune(now = Date.now()): void {
    for (const [node, p] of peers) if (stale(p, now)) drop(node);
  }

  function beat(bye = false): void {
    if (nc.isClosed()) return;
    const b: Beat = bye
      ? { v: 1, node: o.node, instance, intervalMs: o.intervalMs, bye: true }
      : { v: 1, node: o.node, instance, intervalMs: o.intervalMs, bus: info(), report: o.report() };
    try {
      nc.publish(subjects.heartbeat, encode(b));
    } catch (e) {
      log.warn('cluster heartbeat failed', { error: (e as Error).message });
    }
  }

  function onBeat(msg: Msg): void {
    const b = decode(msg.data);
    if (left || !isBeat(b)) return;
    if (b.node === o.node) {
      if (b.instance !== instance && !warnedTwin) {
        warnedTwin = true;
        log.warn('another gateway announces the same node id: give every gateway its own nodeId', { node: o.node });
      }
      return;
    }
    if (b.bye) return drop(b.node);
    const known = peers.get(b.node);
    const isNew = !known || stale(known, Date.now()) || known.beat.instance !== b.instance;
    if (known && isNew) drop(b.node); // restarted (new instance) or late: the old one's state goes
    const staleAfter = CLUSTER_MISSED_BEATS * b.intervalMs + 1;
    const peer = peers.get(b.node);
    if (peer) {
      peer.beat = b;
      peer.lastSeen = Date.now();
      peer.timer.refresh();
    } else {
      const timer = setTimeout(() => drop(b.node), staleAfter);
      timer.unref();
      peers.set(b.node, { beat: b, lastSeen: Date.now(), timer });
      watch?.appeared(b.instance);
    }
    if (isNew) beat();
  }

  function onRequest(msg: Msg): void {
    const req = decode(msg.data) as Request | undefined;
    if (left || !msg.reply || !req || typeof req.op !== 'string' || req.from === instance) return;
    void serveHere(o, req.op, req.body).then((a) => {
      try {
        msg.respond(encode(a));
      } catch {
        // connection closed meanwhile: the asker times out
      }
    });
  }

  const subs: Subscription[] = [
    nc.subscribe(subjects.heartbeat, { callback: (err, msg) => !err && onBeat(msg) }),
    nc.subscribe(subjects.node(o.node), { callback: (err, msg) => !err && onRequest(msg) }),
    nc.subscribe(subjects.all, { callback: (err, msg) => !err && onRequest(msg) }),
  ];
  beat();
  const timer = setInterval(() => {
    prune();
    beat();
  }, o.intervalMs);

  function members(): ClusterMember[] {
    const now = Date.now();
    prune(now);
    const others = [...peers.values()].map(
      ({ beat: b, lastSeen }): ClusterMember => ({
        node: b.node,
        self: false,
        lastSeen,
        intervalMs: b.intervalMs,
        bus: b.bus!,
        report: b.report!,
      }),
    );
    return [selfMember(o, info()), ...others.sort((a, b) => a.node.localeCompare(b.node))];
  }

  /** Every answer to a broadcast, until `expected` have come or `timeoutMs` has passed. */
  function gather(payload: Uint8Array, expected: number, timeoutMs: number): Promise<ClusterAnswer[]> {
    return new Promise((resolve) => {
      const answers: ClusterAnswer[] = [];
      let sub: Subscription | undefined;
      let timer: NodeJS.Timeout | undefined;
      const finish = () => {
        clearTimeout(timer);
        sub?.unsubscribe();
        resolve(answers);
      };
      try {
        const inbox = createInbox();
        sub = nc.subscribe(inbox, {
          callback(err, msg) {
            if (err) return finish();
            const a = answerOf(msg);
            if (a && a.node !== o.node && !answers.some((x) => x.node === a.node)) answers.push(a);
            if (answers.length >= expected) finish();
          },
        });
        timer = setTimeout(finish, timeoutMs);
        nc.publish(subjects.all, payload, { reply: inbox });
      } catch (e) {
        log.warn('cluster request failed', { error: (e as Error).message });
        finish();
      }
    });
  }

  return {
    members,

    async ask(target, op, body, timeoutMs) {
      if (target === o.node) return [await serveHere(o, op, body)];
      const payload = encode({ op, body, from: instance } satisfies Request);
      if (target !== null) {
        try {
          const a = answerOf(await nc.request(subjects.node(target), payload, { timeout: timeoutMs }));
          return a ? [a] : [];
        } catch {
          return []; // no such gateway (no responders), or it did not answer in time
        }
      }
      const expected = members().length - 1;
      const [mine, others] = await Promise.all([serveHere(o, op, body), expected > 0 ? gather(payload, expected, timeoutMs) : Promise.resolve([])]);
      return [mine, ...others];
    },

    async leave() {
      if (left) return;
      left = true;
      clearInterval(timer);
      for (const p of peers.values()) clearTimeout(p.timer);
      beat(true);
      for (const s of subs) s.unsubscribe();
      // Bounded: while NATS is away the bye cannot go out, and the peers drop us by staleness.
      if (!nc.isClosed()) await withTimeout(nc.flush(), 1_000, 'cluster leave').catch(() => {});
    },
  };
}
