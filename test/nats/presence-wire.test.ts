/** The NATS presence wire format (gateway/bus/nats/presence.ts): batches, parts, reassembly. */
import { Unpackr } from 'msgpackr';
import { describe, expect, it } from 'vitest';
import type { PresenceChange } from '../../gateway/bus/bus.ts';
import { createReassembler, encodeChange } from '../../gateway/bus/nats/presence.ts';

const unpackr = new Unpackr({ useRecords: false, mapsAsObjects: true });
const decode = (b: Uint8Array) => unpackr.unpack(b);

describe('presence wire format', () => {
  it('a small batch is one message and reads back as sent', () => {
    const c: PresenceChange = {
      topic: 'room.a',
      from: 'i1',
      seq: 7,
      full: false,
      join: [{ session: 's1', user: 'u1', info: { n: 1 } }, { session: 's2' }],
      leave: ['s3'],
    };
    const parts = encodeChange(c);
    expect(parts).toHaveLength(1);
    expect(createReassembler().add(decode(parts[0]!))).toEqual(c);
    const count: PresenceChange = { topic: 'big.a', from: 'i1', seq: 8, full: true, count: 4000 };
    expect(createReassembler().add(decode(encodeChange(count)[0]!))).toEqual(count);
  });

  it('a batch over 512 KB goes in parts under the limit and is put back together; a lost part drops it', () => {
    const join = Array.from({ length: 3000 }, (_, i) => ({ session: `s${i}`, user: `u${i}`, info: { bio: 'x'.repeat(400) } }));
    const c: PresenceChange = { topic: 'room.big', from: 'i2', seq: 9, full: true, join, leave: ['gone'] };
    const parts = encodeChange(c);
    expect(parts.length).toBeGreaterThan(1);
    for (const p of parts) expect(p.byteLength).toBeLessThanOrEqual(512 * 1024);
    const r = createReassembler();
    const out = parts.map((p) => r.add(decode(p)));
    expect(out.slice(0, -1).every((x) => x === undefined)).toBe(true);
    expect(out.at(-1)).toEqual(c);
    expect(r.size()).toBe(0);

    const lossy = createReassembler();
    expect(lossy.add(decode(parts[0]!))).toBeUndefined();
    expect(lossy.add(decode(parts[2] ?? parts[1]!))).toBeUndefined(); // a part skipped: the batch is dropped
    expect(lossy.size()).toBe(0);
    lossy.add(decode(parts[0]!));
    lossy.forget('i2');
    expect(lossy.size()).toBe(0);
  });
});
