/**
 * One generator process of resume.ts (driven over IPC, see lib/fleet.ts): its share of the
 * clients, each a raw msgpack socket (lib/raw-ws.ts, decode mode) with `hello.compact` as the SDK
 * sends it, subscribed to one topic whose messages carry the numbers 1, 2, 3... Every client checks
 * every message: by `seq` (duplicates of the replay/live overlap are dropped, as the SDK does) and
 * by number (what it keeps must be exactly 1..n, in order).
 *
 * When the victim gateway dies, each of its clients reconnects at once (or after `--jitter-ms`) to
 * its assigned survivor and resumes: `hello` with its session, then `sub` with `since`, or (restore
 * mode) one `hello` carrying `restore.since`. A failed attempt is retried with the SDK's backoff.
 *
 * Commands (replies in brackets):
 *   {type:'open', ...OpenPlan}   [opened]     progress notices {type:'progress', resumed} after the kill
 *   {type:'received'}            [received]   {min, total} of the clients' contiguous counts
 *   {type:'report', mark}        [report]     per-client times (ms since the epoch) and checks
 *   {type:'close'}               [closed]
 */
import { msgpackCodec } from '../../protocol/codec.ts';
import { PROTOCOL_VERSION, SUBPROTOCOL_MSGPACK } from '../../protocol/version.ts';
import { backoffDelay } from '../../sdk/backoff.ts';
import { notifyParent, serveParent, type ChildMessage } from '../lib/fleet.ts';
import { sleep } from '../lib/proc.ts';
import { connectRawWs, type RawWs } from '../lib/raw-ws.ts';

export interface OpenPlan {
  host: string;
  /** Every gateway's port; `victim` is the one that will be killed. */
  ports: number[];
  victim: number;
  topic: string;
  /** Per client of this process: the gateway it starts on, and the one it resumes on if that is the victim. */
  start: number[];
  resumeOn: number[];
  restore: boolean;
  /** Handshakes in flight at most while opening (the kill's reconnects are not paced). */
  window: number;
  /** Each reconnect after the kill waits a random 0..jitterMs first (0: at once). */
  jitterMs: number;
}

const BACKOFF = { min: 100, max: 2000 };
const ATTEMPTS = 20;
const HANDSHAKE_TIMEOUT_MS = 30_000;

type Frame = Record<string, unknown>;
interface Publication {
  seq: number;
  prev: number;
  data: unknown;
}

const nowMs = () => performance.timeOrigin + performance.now();

class Client {
  ws: RawWs | null = null;
  session = { id: '', key: '' };
  epoch = '';
  /** Last `seq` applied. */
  last = 0;
  /** The next number expected (what was kept so far is exactly 1..next-1). */
  next = 1;
  /** Arrival time of each number kept (index n-1). */
  readonly at: number[] = [];
  wrong = 0;
  dups = 0;
  seqGaps = 0;
  closedAt = 0;
  welcomeAt = 0;
  resumedAt = 0;
  attempts = 0;
  recovered: boolean | null = null;
  sessionResumed = false;
  closeCode = 0;

  constructor(readonly index: number) {}

  apply(p: Publication): void {
    if (p.seq <= this.last) return void this.dups++;
    if (this.last !== 0 && p.prev !== this.last) this.seqGaps++;
    this.last = p.seq;
    if (p.data === this.next) {
      this.at.push(nowMs());
      this.next++;
    } else this.wrong++;
  }
}

let plan: OpenPlan;
const clients: Client[] = [];
let resumed = 0;
/** Why resume attempts failed (the client then retried), by message. */
const failures = new Map<string, number>();
let toResume = 0;
let armed = false;

const decode = (p: Buffer): unknown => {
  try {
    return msgpackCodec.decode(p);
  } catch {
    return undefined;
  }
};

/** A compact `msg` ([1, alias, seq, dseq, kind, data, ts]) or a plain one, as a publication. */
function publication(f: unknown): Publication | undefined {
  if (Array.isArray(f)) return f[0] === 1 ? { seq: f[2], prev: f[2] - f[3], data: f[5] } : undefined;
  const m = f as Frame | undefined;
  return m?.t === 'msg' ? { seq: m.seq as number, prev: m.prev as number, data: m.data } : undefined;
}

/**
 * Opens a socket to `port`, says hello (resuming the client's session if it has one) and
 * subscribes (from its position when resuming). Resolves once `subscribed` came; rejects if the
 * socket closes or errs first.
 */
function session(c: Client, port: number, resuming: boolean): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    const since = resuming ? { seq: c.last, epoch: c.epoch } : undefined;
    const restore = plan.restore && since !== undefined;
    const early: Publication[] = [];
    let subscribed = false;
    let done = false;
    const fail = (e: Error) => {
      if (done) return;
      done = true;
      c.ws?.destroy();
      reject(e);
    };
    const onMessage = (p: Buffer) => {
      const f = decode(p);
      const pub = publication(f);
      if (pub) return subscribed ? c.apply(pub) : void early.push(pub);
      const m = f as Frame | undefined;
      if (m?.t === 'welcome') {
        c.session = { id: m.session as string, key: m.key as string };
        if (resuming) {
          c.sessionResumed = m.resumed === true;
          c.welcomeAt = nowMs();
        }
        // Restored by the gateway when the session resumed; otherwise subscribe.
        if (!restore || m.resumed !== true) c.ws!.send(msgpackCodec.encode({ t: 'sub', id: 1, topic: plan.topic, ...(since ? { since } : {}) }) as Uint8Array);
      } else if (m?.t === 'subscribed') {
        c.epoch = m.epoch as string;
        if (since) c.recovered = m.recovered === true;
        for (const r of (m.replay as Publication[] | undefined) ?? []) c.apply(r);
        if (!since || m.recovered !== true) c.last = Math.max(c.last, m.seq as number);
        for (const r of early) c.apply(r);
        subscribed = true;
        done = true;
        resolve();
      } else if (m?.t === 'error') {
        fail(new Error(`error ${String(m.code)}: ${String(m.message)}`));
      }
    };
    connectRawWs({ host: plan.host, port, path: '/ws', protocol: SUBPROTOCOL_MSGPACK, decode: true, timeoutMs: HANDSHAKE_TIMEOUT_MS, onMessage }).then(
      (ws) => {
        c.ws = ws;
        ws.socket.once('close', () => {
          if (!done) fail(new Error(`closed during handshake (${ws.closeCode || 'no close frame'})`));
          else onClosed(c, ws);
        });
        const hello = {
          t: 'hello',
          v: PROTOCOL_VERSION,
          compact: true,
          ...(c.session.id ? { session: c.session } : {}),
          ...(restore ? { restore: { since: { [plan.topic]: since } } } : {}),
        };
        ws.send(msgpackCodec.encode(hello) as Uint8Array);
      },
      (e: Error) => fail(e),
    );
  });
}

/** A subscribed socket closed: if its gateway was killed, resume on the survivor. */
function onClosed(c: Client, ws: RawWs): void {
  c.closeCode = ws.closeCode;
  if (!armed || plan.start[c.index] !== plan.victim || c.closedAt > 0) return;
  c.closedAt = nowMs();
  void (async () => {
    if (plan.jitterMs > 0) await sleep(Math.random() * plan.jitterMs);
    for (;;) {
      c.attempts++;
      try {
        await session(c, plan.ports[plan.resumeOn[c.index]!]!, true);
        c.resumedAt = nowMs();
        if (++resumed === toResume) notifyParent({ type: 'progress', resumed });
        return;
      } catch (e) {
        const why = (e as Error).message;
        failures.set(why, (failures.get(why) ?? 0) + 1);
        if (c.attempts >= ATTEMPTS) return;
        await sleep(backoffDelay(c.attempts, BACKOFF));
      }
    }
  })();
}

async function openAll(p: OpenPlan): Promise<ChildMessage> {
  plan = p;
  const errors = new Map<string, number>();
  let next = 0;
  const lane = async () => {
    while (next < p.start.length) {
      const c = new Client(next++);
      clients.push(c);
      try {
        await session(c, p.ports[p.start[c.index]!]!, false);
      } catch (e) {
        const m = (e as Error).message;
        errors.set(m, (errors.get(m) ?? 0) + 1);
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(p.window, p.start.length) }, lane));
  toResume = p.start.filter((g) => g === p.victim).length;
  armed = true;
  const progress = setInterval(() => {
    notifyParent({ type: 'progress', resumed });
    if (resumed === toResume) clearInterval(progress);
  }, 250);
  const failed = [...errors.values()].reduce((a, b) => a + b, 0);
  return { type: 'opened', ok: clients.length - failed, failed, toResume, errors: [...errors].slice(0, 5).map(([m, k]) => `${k}x ${m}`) };
}

function report(mark: number): ChildMessage {
  const resumedClients = clients.filter((c) => c.closedAt > 0);
  return {
    type: 'report',
    clients: clients.length,
    toResume,
    closedAt: resumedClients.map((c) => c.closedAt),
    welcomeAt: resumedClients.map((c) => c.welcomeAt),
    resumedAt: resumedClients.map((c) => c.resumedAt),
    // When each client (all of them, resumed or not) held every number up to the mark.
    caughtUpAt: clients.map((c) => (c.at.length >= mark && mark > 0 ? c.at[mark - 1]! : 0)),
    counts: clients.map((c) => c.next - 1),
    wrong: clients.reduce((n, c) => n + c.wrong, 0),
    dups: clients.reduce((n, c) => n + c.dups, 0),
    seqGaps: clients.reduce((n, c) => n + c.seqGaps, 0),
    recovered: resumedClients.filter((c) => c.recovered === true).length,
    sessionsResumed: resumedClients.filter((c) => c.sessionResumed).length,
    retried: resumedClients.filter((c) => c.attempts > 1).length,
    attempts: resumedClients.reduce((n, c) => n + c.attempts, 0),
    failedAttempts: Object.fromEntries(failures),
    // Sockets that closed without being the victim's (a survivor cut them off, e.g. 4001 slow consumer).
    otherCloses: clients.filter((c) => c.ws?.closed && c.resumedAt === 0 && c.closedAt === 0).length,
  };
}

serveParent(async (cmd) => {
  if (cmd.type === 'open') return openAll(cmd as unknown as OpenPlan);
  if (cmd.type === 'received') {
    const counts = clients.map((c) => c.next - 1);
    return { type: 'received', min: Math.min(...counts), total: counts.reduce((a, b) => a + b, 0) };
  }
  if (cmd.type === 'report') return report(cmd.mark as number);
  if (cmd.type === 'close') {
    for (const c of clients) c.ws?.destroy();
    return { type: 'closed' };
  }
  throw new Error(`unknown command ${cmd.type}`);
});
