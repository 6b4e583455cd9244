/**
 * Integer literals JSON.parse would round. The protocol carries integers within ±(2^53−1) only
 * (msgpack: a 64-bit integer beyond it decodes to a BigInt and is refused), but JSON.parse turns
 * 9007199254740993 into 9007199254740992 without a word, and the parsed value no longer tells.
 * So the text is scanned: an integer literal (no fraction, no exponent) outside the safe range is
 * reported. Literals with a fraction or an exponent are floats (like msgpack float 32/64) and are
 * taken as JSON.parse reads them. No zod, no Node APIs: the SDK may use it.
 */

const MAX_SAFE_DIGITS = String(Number.MAX_SAFE_INTEGER); // "9007199254740991", 16 digits
/** Any literal of this many digits in a row: only then is the scan needed. */
const LONG_DIGITS = new RegExp(`\\d{${MAX_SAFE_DIGITS.length}}`);

/**
 * The first integer literal outside ±(2^53−1) in `text` (outside strings), or null. `text` must
 * be valid JSON (call it after JSON.parse succeeded): the scan does not validate.
 */
export function unsafeIntegerLiteral(text: string): string | null {
  if (!LONG_DIGITS.test(text)) return null; // the common case: no literal long enough to matter
  const n = text.length;
  for (let i = 0; i < n; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x22 /* " */) {
      // Skip the string: up to the next quote not escaped by a backslash.
      for (i++; i < n; i++) {
        const s = text.charCodeAt(i);
        if (s === 0x5c /* \ */) i++;
        else if (s === 0x22) break;
      }
    } else if (c === 0x2d /* - */ || (c >= 0x30 && c <= 0x39)) {
      const start = i;
      if (c === 0x2d) i++;
      const digitsFrom = i;
      while (i < n && text.charCodeAt(i) >= 0x30 && text.charCodeAt(i) <= 0x39) i++;
      const digits = i - digitsFrom;
      const next = text.charCodeAt(i);
      const isFloat = next === 0x2e /* . */ || next === 0x65 /* e */ || next === 0x45 /* E */;
      // JSON has no leading zeros, so a longer digit run is a larger number, and equal lengths compare as strings.
      if (!isFloat && (digits > MAX_SAFE_DIGITS.length || (digits === MAX_SAFE_DIGITS.length && text.slice(digitsFrom, i) > MAX_SAFE_DIGITS))) {
        return text.slice(start, i);
      }
      // Skip the rest of the number (fraction, exponent); the loop's i++ moves past its last character.
      while (i < n && /[0-9.eE+-]/.test(text[i]!)) i++;
      i--;
    }
  }
  return null;
}
