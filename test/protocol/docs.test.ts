/**
 * docs/protocol.md is what third parties write clients from: its frame examples must be frames
 * the gateway accepts (client) or the schemas describe (server), and its code tables must match
 * protocol/codes.ts exactly.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { CloseCode, ErrorCode, isTerminalClose } from '../../protocol/codes.ts';
import { CLIENT_FRAME_TYPES, ServerFrame } from '../../protocol/frames.ts';
import { MAX_TOPIC_LENGTH } from '../../protocol/topic.ts';
import { decodeClientFrame } from '../../protocol/validate.ts';
import { SUBPROTOCOL_JSON, SUBPROTOCOL_MSGPACK } from '../../protocol/version.ts';

const DOC = readFileSync(new URL('../../docs/protocol.md', import.meta.url), 'utf8');

/** The text of the `## N. Title` section whose title starts with `title`. */
function section(title: string): string {
  const parts = DOC.split(/^## /m);
  const found = parts.find((p) => p.replace(/^\d+\.\s*/, '').startsWith(title));
  if (!found) throw new Error(`docs/protocol.md has no section "${title}"`);
  return found;
}

function jsonExamples(text: string): unknown[] {
  return [...text.matchAll(/```json\n([\s\S]*?)```/g)].map((m) => JSON.parse(m[1]!));
}

describe('docs/protocol.md', () => {
  it('every client frame example is accepted by the gateway, and every client frame type has one', () => {
    const examples = jsonExamples(section('Client → server frames'));
    for (const ex of examples) {
      const r = decodeClientFrame('json', JSON.stringify(ex));
      expect(r, JSON.stringify(ex)).toMatchObject({ ok: true });
    }
    const types = new Set(examples.map((e) => (e as { t: string }).t));
    expect([...types].sort()).toEqual([...CLIENT_FRAME_TYPES].sort());
  });

  it('every server frame example matches its schema, and every server frame type has one', () => {
    const examples = jsonExamples(section('Server → client frames'));
    for (const ex of examples) expect(ServerFrame.safeParse(ex).success, JSON.stringify(ex)).toBe(true);
    const types = new Set(examples.map((e) => (e as { t: string }).t));
    expect([...types].sort()).toEqual(ServerFrame.options.map((o) => o.shape.t.value).sort());
  });

  it('the error code table lists exactly the codes of protocol/codes.ts', () => {
    const rows = [...section('Error codes').matchAll(/^\| (\d{4}) \| `(\w+)` \|/gm)].map((m) => [m[2], Number(m[1])]);
    expect(Object.fromEntries(rows)).toStrictEqual({ ...ErrorCode });
    expect(rows).toHaveLength(Object.keys(ErrorCode).length);
  });

  it('the close code table lists exactly the codes of protocol/codes.ts, with the right action', () => {
    const rows = [...section('Close codes').matchAll(/^\| (\d{4}) \| `(\w+)` \| ([^|]+) \|/gm)];
    expect(Object.fromEntries(rows.map((m) => [m[2], Number(m[1])]))).toStrictEqual({ ...CloseCode });
    expect(rows).toHaveLength(Object.keys(CloseCode).length);
    for (const m of rows) expect(m[3]!.includes('stop'), `${m[1]} ${m[2]}`).toBe(isTerminalClose(Number(m[1])));
  });

  it('names the subprotocols and the topic length limit', () => {
    const transport = section('Transport');
    expect(transport).toContain(`\`${SUBPROTOCOL_MSGPACK}\``);
    expect(transport).toContain(`\`${SUBPROTOCOL_JSON}\``);
    expect(section('Topics')).toContain(`at most ${MAX_TOPIC_LENGTH} characters`);
  });
});
