/** What a member shows (`info`): the token's claim, else what the client offered at hello; bounded in size. */
export function presenceInfo(claim: unknown, offered: unknown, maxBytes: number): { ok: true; value: unknown } | { ok: false; message: string } {
  const value = claim ?? offered;
  if (value === undefined) return { ok: true, value };
  const size = Buffer.byteLength(JSON.stringify(value) ?? '');
  if (size > maxBytes) {
    const from = claim === undefined ? 'hello.info' : "the token's info claim";
    return { ok: false, message: `${from} is ${size} bytes as JSON: at most presence.maxInfoBytes (${maxBytes})` };
  }
  return { ok: true, value };
}
