/**
 * The cluster session registry (NATS engine): session id -> record in the JetStream KV bucket
 * `<prefix>_sessions`, so a session resumes on any gateway with its identity, topics and state.
 *
 * Expiry on nats-server 2.9 (no per-key TTL) is decided by whoever reads a record, not by the
 * bucket: rewriting every attached session every TTL/2 to outrun a max age of one TTL was the
 * NATS engine's steady write load (67/s per 10,000 sessions) and most of its heap garbage.
 *   - An attached record names its gateway process (`process`), and is valid while that
 *     process's liveness key `g.<process>` was written less than a TTL ago. Each gateway writes
 *     its own every TTL/4, so the sessions of a gateway that died expire TTL after its last
 *     heartbeat, all together.
 *   - A detached record (no `process`) is valid for a TTL from its write (the detach).
 *   - Times are the stream's (the message's stored time), compared with the NATS server's clock
 *     as the gateway measures it at each heartbeat, so gateway clocks need not agree.
 *   - The bucket's max age (recordMaxAgeMs: at least 6 h and two TTLs) only clears what nobody
 *     deletes: attached records are rewritten every half of it, and the owning gateway deletes
 *     a detached record when the session expires (left behind only by a gateway that died).
 *
 * Writes are conditional publishes to the key's subject (`$KV.<bucket>.<key>` with
 * Nats-Expected-Last-Subject-Sequence) through a JsWriter, not nats.js's `kv.update`: the
 * refresh is a steady stream of writes (67/s at 10,000 sessions and the default TTL), and each
 * `kv.update` left ~2.9 KB in V8's old generation until its next full GC (nats-kit/js-writer.ts).
 *
 * Ownership: a resume writes the record with compare-and-set on its revision (two racing resumes:
 * one wins, the other starts a fresh session) and tells the previous owner on
 * `<prefix>.sessions.takeover.<node>`, which closes its socket (4004) and forgets the session.
 * A lost compare-and-set alone proves nothing (a write whose reply timed out may have landed):
 * the owner re-reads the record and lets the session go only if another gateway holds it.
 *
 * Users (direct messages to a user): beside each record of an authenticated session, an empty key
 * `u.<sha256(user) hex 16>.<sessionId>`, written with the record (at most every TTL/4 while
 * attached, and with the last write of a detached session) so it ages out with it, never before.
 * A user's sessions are listed with STREAM.MSG.GET `next_by_subj` walks over
 * `$KV.<bucket>.u.<hash>.*` (no consumers, no kv.keys()), each then confirmed by its record.
 */
import { hash, timingSafeEqual } from 'node:crypto';
import { nanos, StorageType, type NatsConnection } from 'nats';
import type { Logger } from '../../log.ts';
import { randomToken } from '../../random-token.ts';
import { SmallSet } from '../../small.ts';
import { keysEqual, newSession, sessionInfo, takeSession, type Session, type SessionStore } from '../sessions.ts';
import { clusterNodeToken } from './cluster.ts';
import { openConnection, type BusConnection } from './connection.ts';
import { resolveOptions, type NatsBusOptions } from './options.ts';
import { headerValue, JsReader, type StoredMsg } from '../../../nats-kit/js-reader.ts';
import { JsWriter } from '../../../nats-kit/js-writer.ts';
import { SlotQueue } from '../../../nats-kit/slot-queue.ts';
import { askTimedUntil, askUntil, readUntil } from './requests.ts';

interface SessionRecord {
  v: 1;
  keyHash: string;
  user: string | null;
  owner: string;
  /** The owning gateway process's liveness token while a socket there holds the session; absent once detached. */
  process?: string;
  topics: string[];
  state?: unknown;
  previousClose?: { code: number; reason: string };
}

export interface RegistryOptions {
  nats: NatsBusOptions;
  ttlMs: number;
  nodeId: string;
  log: Logger;
  /**
   * Each registry call is retried through NATS leader elections and reconnects until this, then
   * given up (default: the bus's read timeout, 15 s). A resume that could not read the record by
   * then starts a new session (`resumed: false`, logged with the cause).
   */
  opTimeoutMs?: number;
  /** The bucket's max age (default recordMaxAgeMs(ttlMs)); tests make it short to see the refresh. */
  recordMaxAgeMs?: number;
}

/** JetStream's "wrong last sequence": a compare-and-set lost to another writer. */
const isWrongRevision = (e: unknown) =>
  /wrong last sequence/i.test((e as Error)?.message ?? '') || (e as { api_error?: { err_code?: number } })?.api_error?.err_code === 10071;

/** Compare-and-set attempts per write; each lost one re-reads the record first. */
const MAX_WRITE_ATTEMPTS = 3;

/**
 * Background writes (changes, detaches, refreshes) in flight at most. A burst (a mass disconnect)
 * waits in `dirty` rather than becoming thousands of concurrent requests: those outlast their
 * first attempt's timeout, are asked again, and each pending request holds memory (measured: a
 * burst of 10,000 refreshes grew the heap by ~35 KB per session, and V8 kept it).
 */
const MAX_BACKGROUND_WRITES = 64;

/**
 * A write that failed for good (registry unreachable past the op timeout) is made again this
 * long after: until it lands, a resume of the session on another gateway would not find it (or
 * find its old topics), and the next refresh may be TTL/2 away.
 */
const WRITE_RETRY_MS = 1000;

/** The bucket's max age: long, so attached records are rarely rewritten; at least two TTLs, so a detached record outlives its TTL. */
export function recordMaxAgeMs(ttlMs: number): number {
  return Math.max(2 * ttlMs, 6 * 3_600_000);
}

/** How often a gateway writes its liveness key: a quarter TTL, so three missed writes in a row are survived. */
const livenessPeriodMs = (ttlMs: number) => Math.max(100, Math.floor(ttlMs / 4));

/** An owner found dead is read again after this at the earliest (its liveness writes may only have been delayed). */
const DEAD_RECHECK_MS = 1000;

/**
 * Attached sessions are rewritten every refresh period, in this many groups one after the other (a group
 * per session by a hash of its id), so the gateway never rewrites every session at once.
 */
const REFRESH_GROUPS = 32;
/** Shortest time between two refresh groups (small TTLs, in tests, use fewer groups). */
const MIN_REFRESH_TICK_MS = 50;

/**
 * How often an attached session's record is rewritten, so the bucket's max age never removes it:
 * half of it (a third below a minute: tests), leaving the other half for a write to land (a failed
 * one is made again every second).
 */
export function refreshPeriodMs(maxAgeMs: number): number {
  return Math.max(500, Math.floor(maxAgeMs >= 60_000 ? maxAgeMs / 2 : maxAgeMs / 3));
}

/** The refresh group of a session id. */
function refreshGroup(id: string, groups: number): number {
  let h = 0;
  for (let i = 0; i < id.length; i++) h = (h * 31 + id.charCodeAt(i)) | 0;
  return (h >>> 0) % groups;
}

const EMPTY = new Uint8Array(0);
// One-shot `crypto.hash`: no Hash object per call (records are hashed on every write).
const hashKey = (key: string) => hash('sha256', key, 'buffer');
/** hashKey in base64, as records carry it. */
const keyHash64 = (key: string) => hash('sha256', key, 'base64');
/** User ids may hold any character: the index addresses a user by a hash of it. */
const userToken = (user: string) => hash('sha256', user, 'hex').slice(0, 16);
const userKey = (user: string, session: string) => `u.${userToken(user)}.${session}`;

/**
 * The max age records are rewritten within: the bucket's, raised to `wanted` when shorter (a
 * bucket made by an earlier version has the session TTL as its max age, which would remove
 * attached records between two refreshes). Where it cannot be raised (no permission), the
 * bucket's own. A bucket that keeps messages forever (0) is left so, and rewritten as if `wanted`.
 */
async function bucketMaxAge(nc: NatsConnection, stream: string, wanted: number, deadline: number, log: Logger): Promise<number> {
  const jsm = await nc.jetstreamManager();
  const info = await askUntil('session bucket info', deadline, () => jsm.streams.info(stream));
  const have = Math.floor(info.config.max_age / 1e6);
  if (have === 0) return wanted;
  if (have >= wanted) return have;
  try {
    await askUntil('session bucket update', deadline, () => jsm.streams.update(stream, { max_age: nanos(wanted) }));
    log.info('session bucket max age raised', { fromMs: have, toMs: wanted });
    return wanted;
  } catch (e) {
    log.warn('session bucket max age could not be raised: its records are rewritten within the one it has', {
      maxAgeMs: have,
      wantedMs: wanted,
      error: (e as Error).message,
    });
    return have;
  }
}

export async function createSessionRegistry(o: RegistryOptions): Promise<SessionStore> {
  const resolved = resolveOptions({ ...o.nats, name: `${o.nodeId}-sessions` });
  const opTimeout = o.opTimeoutMs ?? resolved.readTimeoutMs;
  const conn: BusConnection = await openConnection(
    resolved,
    {
      onDisconnect: () => o.log.warn('session registry disconnected'),
      onReconnect: () => o.log.info('session registry reconnected'),
      onError: (e) => o.log.warn('session registry error', { error: e.message }),
    },
    o.nats.connect,
  );
  const nc: NatsConnection = conn.nc;
  // Binding reads the bucket's stream info, unanswered while its leader is being elected: asked
  // again with short attempts until the start deadline, like the bus's own setup.
  const bucket = `${resolved.prefix}_sessions`;
  const kvStream = `KV_${bucket}`;
  const wantedMaxAge = o.recordMaxAgeMs ?? recordMaxAgeMs(o.ttlMs);
  const startDeadline = Date.now() + resolved.connectTimeoutMs;
  const maxAge = await (async () => {
    await askUntil('session bucket setup', startDeadline, () =>
      nc.jetstream().views.kv(bucket, {
        history: 1,
        replicas: resolved.replicas,
        storage: StorageType.File,
        ttl: wantedMaxAge,
        allow_direct: false,
        description: `Symphonic sessions of deployment ${resolved.prefix}`,
      }),
    );
    return bucketMaxAge(nc, kvStream, wantedMaxAge, startDeadline, o.log);
  })().catch(async (e: unknown) => {
    await conn.close();
    throw e;
  });
  const writer = new JsWriter(nc);
  const reader = new JsReader(nc);
  const closed = () => nc.isClosed();
  /** A KV write: stored only if the key's last revision is still `expect` (0: no record); resolves with the new revision. */
  const put = (key: string, value: Uint8Array, expect: number | undefined): Promise<number> =>
    askTimedUntil(
      Date.now() + opTimeout,
      (timeout) =>
        writer
          .publish(`$KV.${bucket}.${key}`, value, expect === undefined ? { timeout } : { timeout, expect: { lastSubjectSequence: expect } })
          .then((a) => a.seq),
      closed,
    );
  const takeoverSubject = (node: string) => `${resolved.prefix}.sessions.takeover.${clusterNodeToken(node)}`;
  const local = new Map<string, Session>();
  const refreshPeriod = refreshPeriodMs(maxAge);
  const groups = Math.max(1, Math.min(REFRESH_GROUPS, Math.floor(refreshPeriod / MIN_REFRESH_TICK_MS)));
  /** How often an attached session's user-index key is rewritten (with its record's next write). */
  const userRefreshMs = maxAge / 4;

  const takeovers = nc.subscribe(takeoverSubject(o.nodeId), {
    callback: (_err, msg) => {
      const session = local.get(msg.string());
      if (session) letGo(session);
    },
  });

  /** The session continues on another gateway: close our socket (4004) and forget it. */
  function letGo(session: Session): void {
    forget(session);
    const holder = session.holder;
    session.holder = null; // its socket's close must not write the record back
    holder?.takeOver();
  }

  const record = (s: Session): SessionRecord => ({
    v: 1,
    keyHash: keyHash64(s.key),
    user: s.user,
    owner: o.nodeId,
    ...(s.holder === null ? {} : { process: processToken }),
    topics: [...s.topics],
    ...(s.state === undefined ? {} : { state: s.state }),
    ...(s.previousClose ? { previousClose: s.previousClose } : {}),
  });
  const encoder = new TextEncoder();
  const encode = (r: SessionRecord) => encoder.encode(JSON.stringify(r));

  /**
   * The stored record of a key (its last message), asked again until answered for at most
   * `opTimeout`: during a KV leader election requests go unanswered for seconds. Undefined: never
   * written, deleted, or aged out.
   */
  const readKey = (key: string): Promise<StoredMsg | undefined> =>
    readUntil(reader, kvStream, { last_by_subj: `$KV.${bucket}.${key}` }, Date.now() + opTimeout, closed);
  /** A stored value that is a record, not a delete or purge marker. */
  const isLive = (m: StoredMsg) => (headerValue(m.headers, 'KV-Operation') ?? 'PUT') === 'PUT';
  const decoder = new TextDecoder();
  const decodeRecord = (m: StoredMsg) => JSON.parse(decoder.decode(m.data)) as SessionRecord;

  // Liveness (see the header): attached records name this process's token, valid while its key is younger than a TTL.
  const processToken = randomToken(12);
  const livenessKey = (p: string) => `g.${p}`;
  /** The NATS server's clock minus ours (ms), measured at each liveness write: stored times are the server's. */
  let clockOffset = 0;
  /** Our liveness write in flight (one at a time: a slow registry must not stack them). */
  let beating: Promise<void> | null = null;
  let beatRetry: ReturnType<typeof setTimeout> | null = null;
  let stopped = false;
  async function beat(): Promise<void> {
    const sent = Date.now();
    const seq = await put(livenessKey(processToken), EMPTY, undefined);
    const acked = Date.now();
    // Stored between sending and the ack: the midpoint is within half a round trip of it.
    if (acked - sent > 1000) return;
    const m = await reader.get(kvStream, { seq }, 1000).catch(() => undefined);
    if (m) clockOffset = Date.parse(m.time) - (sent + acked) / 2;
  }
  /** Writes the liveness key (one write at a time); a failed write is made again a second later, like a record's. */
  const beatNow = () => {
    beating ??= beat()
      .catch((e: unknown) => {
        if (stopped || closed()) return;
        o.log.warn('session registry liveness write failed', { error: (e as Error).message });
        beatRetry ??= setTimeout(() => {
          beatRetry = null;
          void beatNow();
        }, WRITE_RETRY_MS);
        beatRetry.unref();
      })
      .finally(() => {
        beating = null;
      });
    return beating;
  };
  // The first liveness write, before any record names this process.
  await beatNow();

  /** What this gateway last learnt of another process's liveness key (at: its stored time, -Infinity if none). */
  interface Seen {
    at: number;
    checked: number;
    reading: Promise<number> | null;
  }
  const seen = new Map<string, Seen>();
  /**
   * When a gateway process last wrote its liveness key (the server's clock; -Infinity: never, or
   * removed). Read once per owner while it is alive (a resume storm asks this for thousands of
   * sessions of one dead gateway), and at most every DEAD_RECHECK_MS once it looks dead.
   */
  function lastBeat(p: string): number | Promise<number> {
    if (p === processToken) return Date.now() + clockOffset;
    let e = seen.get(p);
    if (e) {
      if (e.at + o.ttlMs > Date.now() + clockOffset || Date.now() - e.checked < DEAD_RECHECK_MS) return e.at;
      if (e.reading) return e.reading;
    } else seen.set(p, (e = { at: -Infinity, checked: 0, reading: null }));
    const entry = e;
    entry.reading = readKey(livenessKey(p))
      .then((m) => {
        entry.at = m && isLive(m) ? Date.parse(m.time) : -Infinity;
        entry.checked = Date.now();
        return entry.at;
      })
      .finally(() => {
        entry.reading = null;
      });
    return entry.reading;
  }
  /** Forgets what was learnt of processes not asked about for a while (each gateway restart is a new one). */
  function pruneSeen(): void {
    const old = Date.now() - Math.max(o.ttlMs, 60_000);
    for (const [p, e] of seen) if (!e.reading && e.checked < old) seen.delete(p);
  }

  /** A stored record that is still valid (see the header), with when it stops being, on our clock; undefined otherwise. */
  async function validRecord(m: StoredMsg | undefined): Promise<{ r: SessionRecord; expiresAt: number } | undefined> {
    if (!m || !isLive(m)) return undefined;
    const r = decodeRecord(m);
    const from = r.process === undefined ? Date.parse(m.time) : await lastBeat(r.process);
    const expiresAt = from + o.ttlMs - clockOffset;
    return expiresAt > Date.now() ? { r, expiresAt } : undefined;
  }

  /**
   * What the registry tracks of each local session, in one object updated in place: the writes of
   * an idle gateway (its refresh) then allocate nothing that lives until the next one. Five Maps and Sets keyed by session did the same job, and V8 rebuilt their backing stores
   * as entries came and went, promoting each rebuild to its old generation.
   */
  interface Tracked {
    /**
     * The record revision this gateway last wrote: every write is compare-and-set, so a gateway
     * that lost the session (resumed elsewhere) can never overwrite the new owner's record.
     * Undefined: create it.
     */
    rev: number | undefined;
    /**
     * The key that write carried. The key, not its hash: it is the session's own key string until
     * the key rotates, so it costs no memory of its own (the hash is needed only after a lost
     * compare-and-set). Undefined: nothing written yet.
     */
    key: string | undefined;
    /** Keys of writes sent since the last confirmed one (one, or several if the key rotated): a write whose reply timed out may still have landed. */
    sent: string | string[] | undefined;
    /** The write in flight, if any: one at a time per session. */
    writing: Promise<void> | null;
    /** Needs a write (changed, detached, refresh due). */
    dirty: boolean;
    /** In `queue`. */
    queued: boolean;
    /** When this gateway last wrote the session's user-index key. */
    userAt: number;
    /** That write's revision (deleted with the record when the session expires). */
    userRev: number | undefined;
    /** Its refresh group (refreshGroup of its id). */
    readonly group: number;
  }
  /** Every local session's (forget() deletes it with the session). */
  const tracked = new Map<Session, Tracked>();
  /** A fresh record of a session, not yet in `tracked`. */
  const newTracked = (s: Session): Tracked => ({
    rev: undefined,
    key: undefined,
    sent: undefined,
    writing: null,
    dirty: false,
    queued: false,
    userAt: 0,
    userRev: undefined,
    group: refreshGroup(s.id, groups),
  });
  const track = (s: Session): Tracked => {
    let t = tracked.get(s);
    if (!t) tracked.set(s, (t = newTracked(s)));
    return t;
  };
  /** The key this gateway wrote for the session whose hash a stored record carries, if any. */
  const keyWritten = (t: Tracked, keyHash: string): string | undefined => {
    if (t.key !== undefined && keyHash64(t.key) === keyHash) return t.key;
    if (typeof t.sent === 'string') return keyHash64(t.sent) === keyHash ? t.sent : undefined;
    return t.sent?.find((k) => keyHash64(k) === keyHash);
  };
  /** Sessions marked for a background write, in the order they were marked (slots reused: a steady refresh allocates nothing here). */
  const queue = new SlotQueue<Session>();
  let scheduled = false;
  let background = 0;

  /** Marks a session for writing; writes are batched per turn and one at a time per session. */
  function schedule(s: Session): void {
    const t = track(s);
    t.dirty = true;
    if (!t.queued) {
      t.queued = true;
      queue.push(s);
    }
    if (scheduled) return;
    scheduled = true;
    setImmediate(() => {
      scheduled = false;
      pump();
    });
  }

  /** Starts the marked sessions' writes in the order they were marked, at most MAX_BACKGROUND_WRITES at a time. */
  function pump(): void {
    while (queue.size) {
      if (background >= MAX_BACKGROUND_WRITES) return;
      const s = queue.shift()!;
      const t = tracked.get(s);
      if (!t) continue; // forgotten
      t.queued = false;
      // Written meanwhile (attach), or marked again while written: its write's end marks it again.
      if (!t.dirty || t.writing) continue;
      background++;
      void write(s).finally(() => {
        background--;
        pump();
      });
    }
  }

  /** Writes the record now; callers make sure no other write of `s` is in flight. */
  function write(s: Session): Promise<void> {
    const t = track(s);
    t.dirty = false;
    const done = store(s, t).finally(() => {
      t.writing = null;
      if (t.dirty && tracked.get(s) === t) schedule(s);
    });
    t.writing = done;
    return done;
  }

  /** Writes the record once the write in flight, if any, is done. */
  async function writeAfterInFlight(s: Session): Promise<void> {
    const t = track(s);
    while (t.writing) await t.writing;
    await write(s);
  }

  async function store(s: Session, t: Tracked): Promise<void> {
    try {
      // A forgotten session (taken over, expired) is never written again.
      for (let attempt = 1; local.get(s.id) === s; attempt++) {
        const key = s.key;
        const r = record(s);
        // Noted before sending: it may land even if its reply never comes.
        if (t.sent === undefined) t.sent = key;
        else if (typeof t.sent === 'string') {
          if (t.sent !== key) t.sent = [t.sent, key];
        } else if (!t.sent.includes(key)) t.sent.push(key);
        try {
          const user = userDue(s, t) ? touchUser(s, t) : undefined;
          t.rev = await put(s.id, encode(r), t.rev ?? 0);
          t.key = key;
          t.sent = undefined;
          await user;
          return;
        } catch (e) {
          if (!isWrongRevision(e) || attempt === MAX_WRITE_ATTEMPTS) throw e;
        }
        // A lost compare-and-set is not yet a takeover: our own timed-out write may have landed.
        // Resumed on another gateway meanwhile (its takeover message may have been lost): it owns the record now.
        if (!(await resync(s, t))) return letGo(s);
      }
    } catch (e) {
      o.log.warn('session write failed', { error: (e as Error).message });
      retryLater(s);
    }
  }

  /** Sessions whose write failed, written again together after WRITE_RETRY_MS (paced like any background write). */
  const failed = new Set<Session>();
  let retry: ReturnType<typeof setTimeout> | null = null;
  function retryLater(s: Session): void {
    if (local.get(s.id) !== s) return;
    failed.add(s);
    if (retry) return;
    retry = setTimeout(() => {
      retry = null;
      for (const f of failed) if (local.get(f.id) === f) schedule(f);
      failed.clear();
    }, WRITE_RETRY_MS);
    retry.unref();
  }

  /** After a lost compare-and-set: adopts the stored revision if the record is still ours (our node
   *  and a key we wrote). False: someone else holds the session, whose record we must not touch. */
  async function resync(s: Session, t: Tracked): Promise<boolean> {
    const entry = await readKey(s.id);
    if (!entry || !isLive(entry)) {
      // Aged out (or deleted) while we still hold the socket: write it again (a claim needs a record).
      t.rev = entry?.seq;
      return true;
    }
    const r = decodeRecord(entry);
    const key = r.owner === o.nodeId ? keyWritten(t, r.keyHash) : undefined;
    if (key === undefined) return false;
    t.rev = entry.seq;
    t.key = key;
    return true;
  }

  /**
   * Writes the user-index key when it is due: first with the record, then at most every quarter
   * of the bucket's max age while attached, and with the last write of a detached session, so it
   * never ages out before the record.
   */
  const userDue = (s: Session, t: Tracked) => s.user !== null && (s.holder === null || Date.now() - t.userAt >= userRefreshMs);
  /** Writes the user-index key (callers check userDue); a failure is logged, the record's write goes on. */
  async function touchUser(s: Session, t: Tracked): Promise<void> {
    try {
      t.userRev = await put(userKey(s.user!, s.id), EMPTY, undefined);
      t.userAt = Date.now();
    } catch (e) {
      o.log.warn('session user write failed', { error: (e as Error).message });
    }
  }

  async function liveRecord(id: string): Promise<SessionRecord | undefined> {
    return (await validRecord(await readKey(id)))?.r;
  }

  /** Session ids listed under a user's index keys: walks `$KV.<bucket>.u.<hash>.*` by point reads. */
  async function indexedSessions(user: string): Promise<string[]> {
    const prefix = `$KV.${bucket}.u.${userToken(user)}.`;
    const ids = new Set<string>();
    const deadline = Date.now() + opTimeout;
    for (let seq = 1; ; ) {
      // `next_by_subj` takes a wildcard on nats-server 2.9 (LoadNextMsg with a wildcard filter).
      const sm = await readUntil(reader, kvStream, { seq, next_by_subj: `${prefix}*` }, deadline, closed);
      if (!sm) break;
      ids.add(sm.subject.slice(prefix.length));
      seq = sm.seq + 1;
    }
    return [...ids];
  }

  function forget(s: Session): void {
    if (local.get(s.id) === s) local.delete(s.id);
    const t = tracked.get(s);
    if (t) t.dirty = false; // a slot in `queue` may still name it: skipped
    tracked.delete(s);
    failed.delete(s);
  }

  /**
   * Writes our claim on the record at `revision`. A lost compare-and-set after an unanswered
   * attempt may be our own claim that landed: the record then names this gateway with our bytes.
   */
  async function claimed(id: string, value: Uint8Array, revision: number): Promise<number> {
    try {
      return await put(id, value, revision);
    } catch (e) {
      if (!isWrongRevision(e)) throw e;
      const now = await readKey(id);
      if (now && isLive(now) && Buffer.from(now.data).equals(value)) return now.seq;
      throw e;
    }
  }

  /**
   * A lost compare-and-set is retried from a fresh read: the gateway that held the session may
   * still be writing it (a state change, a refresh, its detach) when the client is already back
   * here, and giving up would hand the client a new session, losing the old one. Two racing
   * resumes still end with one holder: the later claim wins and the other gateway is told.
   */
  async function resumeFromRegistry(offer: { id: string; key: string }, holder: Session['holder'], user: string | null): Promise<Session | null> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await resumeOnce(offer, holder, user);
      } catch (e) {
        if (!isWrongRevision(e) || attempt === MAX_WRITE_ATTEMPTS) throw e;
      }
    }
  }

  async function resumeOnce(offer: { id: string; key: string }, holder: Session['holder'], user: string | null): Promise<Session | null> {
    const entry = await readKey(offer.id);
    const valid = await validRecord(entry);
    if (!entry || !valid) return null;
    const r = valid.r;
    const given = hashKey(offer.key);
    const stored = Buffer.from(r.keyHash, 'base64');
    if (r.v !== 1 || r.user !== user || stored.length !== given.length || !timingSafeEqual(stored, given)) return null;
    const session: Session = {
      id: offer.id,
      user,
      key: '',
      topics: new SmallSet(r.topics),
      state: r.state,
      previousClose: r.previousClose,
      holder: null,
      expiresAt: Infinity,
    };
    takeSession(session, holder!);
    // Compare-and-set: of two racing resumes exactly one continues the session.
    const key = session.key;
    const claim = record(session);
    const t = newTracked(session); // tracked once the claim holds (it becomes local then)
    const [revision] = await Promise.all([claimed(offer.id, encode(claim), entry.seq), userDue(session, t) ? touchUser(session, t) : undefined]);
    t.rev = revision;
    t.key = key;
    tracked.set(session, t);
    if (r.owner !== o.nodeId) nc.publish(takeoverSubject(r.owner), offer.id);
    return session;
  }

  // Attached sessions are rewritten every refresh period so the bucket's max age never removes
  // them: one group per tick, each group once per period.
  let tick = 0;
  const refresh = setInterval(
    () => {
      const group = tick++ % groups;
      for (const s of local.values()) if (s.holder && track(s).group === group) schedule(s);
    },
    Math.floor(refreshPeriod / groups),
  );
  refresh.unref();

  const liveness = setInterval(() => {
    void beatNow();
    pruneSeen();
  }, livenessPeriodMs(o.ttlMs));
  liveness.unref();

  /** An expired session's record and user-index key, deleted by the revisions we wrote: a newer write (another gateway's claim) replaced them and is left alone. */
  function removeStored(t: Tracked): void {
    const drop = (rev: number | undefined) => {
      if (rev !== undefined)
        writer
          .deleteMsg(kvStream, rev, opTimeout)
          .catch((e: unknown) => o.log.debug('expired session record not deleted (the bucket ages it out)', { error: (e as Error).message }));
    };
    drop(t.rev);
    drop(t.userRev);
  }

  return {
    async attach(offer, holder, user) {
      const here = offer ? local.get(offer.id) : undefined;
      if (here && here.user === user && keysEqual(here.key, offer!.key)) {
        takeSession(here, holder);
        await writeAfterInFlight(here);
        if (local.get(here.id) === here) return { session: here, resumed: true };
      }
      if (offer && !here) {
        try {
          const session = await resumeFromRegistry(offer, holder, user);
          if (session) {
            local.set(session.id, session);
            return { session, resumed: true };
          }
        } catch (e) {
          o.log.warn('session resume from registry failed', { error: (e as Error).message });
        }
      }
      const session = newSession(user, holder);
      local.set(session.id, session);
      await write(session);
      return { session, resumed: false };
    },
    detach(session, holder) {
      if (session.holder !== holder) return;
      session.holder = null;
      session.expiresAt = Date.now() + o.ttlMs;
      schedule(session); // one last write, without `process`: the record is valid for a TTL from it
    },
    changed(session) {
      if (local.get(session.id) === session) schedule(session);
    },
    sweep(now = Date.now()) {
      let removed = 0;
      // values(), not entries(): runs every second over every session, and an entry is an array each.
      for (const s of local.values()) {
        if (s.expiresAt <= now) {
          const t = tracked.get(s);
          forget(s);
          if (t) removeStored(t);
          removed++;
        }
      }
      return removed;
    },
    size: () => local.size,
    async recipients(to) {
      if ('session' in to) {
        const here = local.get(to.session);
        if (here) return here.expiresAt > Date.now() ? [here.id] : [];
        return (await liveRecord(to.session)) ? [to.session] : [];
      }
      const user = to.user;
      const ids = await indexedSessions(user);
      // An index key may outlive its record by a moment (written apart): the record decides.
      const live = await Promise.all(ids.map(async (id) => ((await liveRecord(id))?.user === user ? id : null)));
      return live.filter((id): id is string => id !== null);
    },
    async inspect(id) {
      const here = local.get(id);
      if (here) return here.expiresAt > Date.now() ? sessionInfo(here) : undefined;
      const valid = await validRecord(await readKey(id));
      if (!valid) return undefined;
      const { r, expiresAt } = valid;
      // Attached elsewhere: when it expires if its gateway stops now (the admin API asks that gateway).
      return { id, user: r.user, topics: r.topics, attached: null, local: false, owner: r.owner, expiresAt };
    },
    async close() {
      stopped = true;
      clearInterval(refresh);
      clearInterval(liveness);
      if (beatRetry) clearTimeout(beatRetry);
      if (retry) clearTimeout(retry);
      for (const f of failed) if (local.get(f.id) === f) track(f).dirty = true;
      const last: Promise<void>[] = [];
      for (const [s, t] of tracked) if (t.dirty && !t.writing) last.push(write(s));
      await Promise.all(last);
      await beating;
      takeovers.unsubscribe();
      writer.close();
      reader.close();
      await conn.close();
    },
  };
}
