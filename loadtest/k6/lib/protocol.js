/**
 * What a Symphonic client must do with the frames of one topic (docs/protocol.md sections 8-9),
 * as plain JavaScript with no k6 and no Node imports: the k6 scenarios use it, and
 * test/loadtest/k6-logic.test.ts runs the same code against a real gateway without k6.
 *
 * A topic is tracked from `sub` to the end: `msg` frames that arrive before `subscribed` are held
 * (the gateway joins the live stream before it reads the snapshot), then merged by seq; a live
 * message whose `prev` is not the last seq seen is a gap (something was lost); one whose seq is
 * not above it is a duplicate. Numbered messages (`data.n`) let a subscriber count what it got.
 */

/** JSON subprotocol: text frames, the same frames as msgpack. */
export const SUBPROTOCOL = 'symphonic.v1.json';

export function helloFrame(opts = {}) {
  const f = { t: 'hello', v: 1, client: opts.client || 'k6' };
  if (opts.token) f.token = opts.token;
  if (opts.session) f.session = opts.session;
  if (opts.restore) f.restore = { since: opts.restore };
  return JSON.stringify(f);
}

export function subFrame(id, topic, since) {
  const f = { t: 'sub', id, topic };
  if (since) f.since = since;
  return JSON.stringify(f);
}

export function pubFrame(id, topic, kind, data) {
  return JSON.stringify({ t: 'pub', id, topic, kind, data });
}

/** The frame, or null when the text is not JSON. */
export function parseFrame(text) {
  try {
    const f = JSON.parse(text);
    return f !== null && typeof f === 'object' && typeof f.t === 'string' ? f : null;
  } catch (_e) {
    return null;
  }
}

/**
 * The close code of a socket that ended abnormally, from k6's error text
 * ("websocket: close 4001 (...): ...") or a close event's `code`; 0 when there is none.
 */
export function closeCodeOf(errorOrEvent) {
  if (errorOrEvent && typeof errorOrEvent.code === 'number') return errorOrEvent.code;
  const m = /close (\d{4})/.exec(String((errorOrEvent && errorOrEvent.error) || errorOrEvent || ''));
  return m ? Number(m[1]) : 0;
}

/**
 * One topic as one client sees it. `onFrame` returns the live (or replayed) messages newly
 * applied, oldest first, so the caller can measure latency on exactly those.
 */
export function createTopicTracker(topic) {
  const t = {
    topic,
    /** When the first `subscribed` arrived (ms since the epoch), 0 before. */
    subscribedAt: 0,
    phase: 'idle',
    /** The position: the seq of the last message applied, or of the `subscribed` reply. */
    last: 0,
    epoch: '',
    positioned: false,
    held: [],
    /** Distinct `data.n` of numbered messages applied. */
    numbers: new Set(),
    /** `data.n` of the first numbered message applied after the first `subscribed`. */
    firstNumber: 0,
    received: 0,
    gaps: 0,
    duplicates: 0,
    subscribes: 0,
    recovered: 0,
    notRecovered: 0,
    errors: [],
  };

  function apply(m, out) {
    if (m.seq <= t.last && t.positioned) {
      t.duplicates++;
      return;
    }
    if (t.positioned && m.prev !== t.last) t.gaps++;
    t.last = m.seq;
    t.positioned = true;
    t.received++;
    const n = m.data && typeof m.data.n === 'number' ? m.data.n : undefined;
    if (n !== undefined) {
      if (t.numbers.size === 0 && t.firstNumber === 0) t.firstNumber = n;
      t.numbers.add(n);
    }
    out.push(m);
  }

  t.startSubscribe = () => {
    t.phase = 'subscribing';
    t.held = [];
  };

  /** The socket went away: what was held is replayed on resume. */
  t.disconnected = () => {
    t.phase = 'idle';
    t.held = [];
  };

  t.since = () => (t.positioned ? { seq: t.last, epoch: t.epoch } : undefined);

  /** Feeds a frame of this topic; returns the messages applied because of it. */
  t.onFrame = (f) => {
    const out = [];
    if (f.t === 'msg') {
      if (t.phase === 'subscribing') t.held.push(f);
      else if (t.phase === 'live') apply(f, out);
    } else if (f.t === 'subscribed') {
      t.subscribes++;
      if (!t.subscribedAt) t.subscribedAt = Date.now();
      if (f.wasRecovering) {
        if (f.recovered) t.recovered++;
        else t.notRecovered++;
      }
      if (f.recovered && f.replay) {
        for (const p of f.replay) apply(p, out);
      } else {
        // A snapshot (or a first subscribe): the position is the reply's seq; nothing before it is owed.
        t.last = f.seq;
        t.positioned = true;
      }
      t.epoch = f.epoch;
      t.phase = 'live';
      const held = t.held;
      t.held = [];
      for (const m of held) apply(m, out);
    } else if (f.t === 'error') {
      t.errors.push(f.code);
      t.phase = 'idle';
      t.held = [];
    }
    return out;
  };

  /**
   * Numbered messages 1..total were published: how many of those this client was owed and how
   * many it got. Owed: all of them when it subscribed before publishing began (`fromStart`), else
   * those from the first one it received after subscribing (a gap right after its `subscribed`
   * is counted in `gaps`).
   */
  t.delivery = (total, fromStart) => {
    const from = fromStart ? 1 : t.firstNumber > 0 ? t.firstNumber : total + 1;
    const owed = Math.max(0, total - from + 1);
    let got = 0;
    for (const n of t.numbers) if (n >= from && n <= total) got++;
    return { owed, got };
  };

  return t;
}
