/**
 * Presence between gateways over core NATS (no JetStream: presence is live state, nothing is
 * stored). gateway/presence/ owns the logic; this file only carries it.
 *
 *   `<prefix>.presence.d.<topic>`   each gateway's batched changes of the topic (at most one batch
 *                                   per topic per `presence.intervalMs`), to the gateways watching it
 *   `<prefix>.presence.q.<topic>`   "send me your full set of this topic" (every gateway listens on
 *                                   `<prefix>.presence.q.>`), answered on the reply inbox, empty
 *                                   sets included so the asker knows when everyone answered
 *
 * Payloads are msgpack `{f: from, s: seq, u: full, j: [[session, user|null, info?]...], l: [session...],
 * c: count, p: part, n: parts}`. A batch larger than MAX_PART_BYTES goes out in parts with the same
 * `s`, reassembled here (one publisher's messages arrive in order); a lost part shows as a gap.
 * Who is alive comes from the roster (cluster.ts `RosterWatch`), wired by engine.ts.
 */
import { createInbox, type Msg, type NatsConnection, type Subscription } from 'nats';
import { Packr, Unpackr } from 'msgpackr';
import type { Logger } from '../../log.ts';
import type { PresenceChange, PresenceEntry, PresenceHandlers, PresenceLink } from '../bus.ts';

/** Below NATS's default max_payload (1 MB) with room for headers. */
const MAX_PART_BYTES = 512 * 1024;

const packr = new Packr({ useRecords: false, mapsAsObjects: true, variableMapSize: true });
const unpackr = new Unpackr({ useRecords: false, mapsAsObjects: true });

type WireEntry = [string, string | null, unknown?];
interface Wire {
  f: string;
  t: string;
  s: number;
  u?: 1;
  j?: WireEntry[];
  l?: readonly string[];
  c?: number;
  p?: number;
  n?: number;
}

export function presenceSubjects(prefix: string) {
  return {
    changes: (topic: string) => `${prefix}.presence.d.${topic}`,
    query: (topic: string) => `${prefix}.presence.q.${topic}`,
    queries: `${prefix}.presence.q.>`,
  };
}

const toWire = (e: PresenceEntry): WireEntry => (e.info === undefined ? [e.session, e.user ?? null] : [e.session, e.user ?? null, e.info]);
function fromWire(w: WireEntry): PresenceEntry {
  const [session, user, info] = w;
  return { session, ...(user === null ? {} : { user }), ...(info === undefined ? {} : { info }) };
}

/** A change as one or more payloads, each under MAX_PART_BYTES (split by halving the join list). */
export function encodeChange(c: PresenceChange): Uint8Array[] {
  const base: Wire = { f: c.from, t: c.topic, s: c.seq, ...(c.full ? { u: 1 as const } : {}), ...(c.count === undefined ? {} : { c: c.count }) };
  const joins = (c.join ?? []).map(toWire);
  const one = packr.pack({ ...base, ...(joins.length ? { j: joins } : {}), ...(c.leave?.length ? { l: c.leave } : {}) });
  if (one.byteLength <= MAX_PART_BYTES || joins.length <= 1) return [Uint8Array.from(one)];
  let parts = 2;
  for (;;) {
    const size = Math.ceil(joins.length / parts);
    const out: Uint8Array[] = [];
    let fits = true;
    for (let i = 0; i < parts; i++) {
      const chunk = joins.slice(i * size, (i + 1) * size);
      const w: Wire = { ...base, p: i, n: parts, j: chunk, ...(i === 0 && c.leave?.length ? { l: c.leave } : {}) };
      const bytes = Uint8Array.from(packr.pack(w));
      if (bytes.byteLength > MAX_PART_BYTES && chunk.length > 1) fits = false;
      out.push(bytes);
    }
    if (fits || size <= 1) return out;
    parts *= 2;
  }
}

function decodeWire(data: Uint8Array): Wire | undefined {
  try {
    const w = unpackr.unpack(data) as Wire;
    return w && typeof w.f === 'string' && typeof w.t === 'string' && typeof w.s === 'number' ? w : undefined;
  } catch {
    return undefined;
  }
}

/** Joins the parts of one publisher's batch; whole batches pass through. */
export function createReassembler() {
  const partial = new Map<string, { wire: Wire; next: number }>();
  return {
    add(w: Wire): PresenceChange | undefined {
      if (w.n === undefined) return changeOf(w);
      const key = `${w.f} ${w.t}`;
      if (w.p === 0) partial.set(key, { wire: { ...w, j: [...(w.j ?? [])] }, next: 1 });
      else {
        const held = partial.get(key);
        if (!held || held.wire.s !== w.s || held.next !== w.p) return void partial.delete(key); // a part lost: the gap shows later
        held.wire.j!.push(...(w.j ?? []));
        held.next++;
      }
      const held = partial.get(key)!;
      if (held.next < w.n) return undefined;
      partial.delete(key);
      return changeOf(held.wire);
    },
    /** A gateway is gone: its unfinished batches will never complete. */
    forget(from: string): void {
      for (const key of partial.keys()) if (key.startsWith(`${from} `)) partial.delete(key);
    },
    size: () => partial.size,
  };
}

function changeOf(w: Wire): PresenceChange {
  return {
    topic: w.t,
    from: w.f,
    seq: w.s,
    full: w.u === 1,
    ...(w.j ? { join: w.j.map(fromWire) } : {}),
    ...(w.l ? { leave: w.l } : {}),
    ...(w.c === undefined ? {} : { count: w.c }),
  };
}

export interface NatsPresenceOptions {
  readonly prefix: string;
  readonly instance: string;
  readonly log: Logger;
  /** The bus's connection, once started. */
  connection(): NatsConnection;
  /** How many other gateways the roster knows (a collect stops waiting once they all answered). */
  peers(): number;
}

export interface NatsPresenceLink extends PresenceLink {
  /** What it sent: messages and bytes (batches and full-set answers), for the engine's figures. */
  stats(): { messages: number; bytes: number };
  /** The roster dropped `instance`: forget its unfinished parts. */
  forget(instance: string): void;
}

export function createNatsPresence(o: NatsPresenceOptions): NatsPresenceLink {
  const subjects = presenceSubjects(o.prefix);
  const watched = new Map<string, Subscription>();
  const reassembler = createReassembler();
  let handlers: PresenceHandlers | undefined;
  let queries: Subscription | undefined;
  const sent = { messages: 0, bytes: 0 };
  const count = (part: Uint8Array) => {
    sent.messages++;
    sent.bytes += part.byteLength;
    return part;
  };

  function onChange(msg: Msg): void {
    const w = decodeWire(msg.data);
    if (!w || w.f === o.instance || !handlers) return;
    const c = reassembler.add(w);
    if (c) handlers.change(c);
  }

  function onQuery(msg: Msg): void {
    if (!handlers || !msg.reply) return;
    let ask: { from?: unknown; only?: unknown };
    try {
      ask = unpackr.unpack(msg.data) as typeof ask;
    } catch {
      return;
    }
    if (ask.from === o.instance || (typeof ask.only === 'string' && ask.only !== o.instance)) return;
    const topic = msg.subject.slice(subjects.query('').length);
    try {
      for (const part of encodeChange(handlers.snapshot(topic))) msg.respond(count(part));
    } catch (e) {
      o.log.warn('presence answer failed', { topic, error: (e as Error).message });
    }
  }

  return {
    instance: o.instance,

    start(h) {
      handlers = h;
      queries = o.connection().subscribe(subjects.queries, { callback: (err, msg) => !err && onQuery(msg) });
    },

    watch(topic) {
      if (watched.has(topic)) return;
      watched.set(topic, o.connection().subscribe(subjects.changes(topic), { callback: (err, msg) => !err && onChange(msg) }));
    },

    unwatch(topic) {
      watched.get(topic)?.unsubscribe();
      watched.delete(topic);
    },

    publish(change) {
      const nc = o.connection();
      if (nc.isClosed()) return;
      try {
        for (const part of encodeChange(change)) nc.publish(subjects.changes(change.topic), count(part));
      } catch (e) {
        // Disconnected: the receivers see the gap in `seq` at the next batch and ask for the full set.
        o.log.warn('presence publish failed', { topic: change.topic, error: (e as Error).message });
      }
    },

    collect(topic, only, timeoutMs) {
      const nc = o.connection();
      const expected = only === null ? o.peers() : 1;
      return new Promise((resolve) => {
        const answers = new Map<string, PresenceChange>();
        const parts = createReassembler();
        let sub: Subscription | undefined;
        let timer: NodeJS.Timeout | undefined;
        const finish = () => {
          clearTimeout(timer);
          sub?.unsubscribe();
          resolve([...answers.values()]);
        };
        try {
          const inbox = createInbox();
          sub = nc.subscribe(inbox, {
            callback(err, msg) {
              if (err) return finish();
              const w = decodeWire(msg.data);
              const c = w && w.t === topic ? parts.add(w) : undefined;
              if (c) answers.set(c.from, c);
              if (answers.size >= expected) finish();
            },
          });
          timer = setTimeout(finish, timeoutMs);
          nc.publish(subjects.query(topic), packr.pack({ from: o.instance, ...(only ? { only } : {}) }), { reply: inbox });
        } catch (e) {
          o.log.warn('presence collect failed', { topic, error: (e as Error).message });
          finish();
        }
      });
    },

    stats: () => ({ ...sent }),
    forget: (instance) => reassembler.forget(instance),

    close() {
      queries?.unsubscribe();
      for (const s of watched.values()) s.unsubscribe();
      watched.clear();
      handlers = undefined;
    },
  };
}
