/**
 * Topic patterns, NATS style: dot-separated tokens where `*` matches exactly one token and `>`
 * (only as the last token) matches one or more trailing tokens. `chat.*` matches `chat.room-1`
 * but not `chat` or `chat.a.b`; `chat.>` matches both of the latter but not `chat`.
 * Used by token claims (`subs`, `pubs`) and nowhere on the delivery path.
 */

const TOKEN_RE = /^[A-Za-z0-9_-]+$/;
export const MAX_PATTERNS = 256;

/** Why a pattern is invalid, or null. */
export function patternError(pattern: unknown): string | null {
  if (typeof pattern !== 'string') return 'a pattern must be a string';
  if (pattern.length === 0 || pattern.length > 200) return 'a pattern must be 1-200 characters';
  const tokens = pattern.split('.');
  for (let i = 0; i < tokens.length; i++) {
    const t = tokens[i]!;
    if (t === '>' && i === tokens.length - 1) continue;
    if (t === '*') continue;
    if (!TOKEN_RE.test(t)) return `invalid pattern token ${JSON.stringify(t)} (tokens of [A-Za-z0-9_-], "*", or a final ">")`;
  }
  return null;
}

export function matchPattern(pattern: string, topic: string): boolean {
  if (pattern === topic) return true;
  const p = pattern.split('.');
  const t = topic.split('.');
  for (let i = 0; i < p.length; i++) {
    const tok = p[i]!;
    if (tok === '>') return t.length > i;
    if (i >= t.length) return false;
    if (tok !== '*' && tok !== t[i]) return false;
  }
  return p.length === t.length;
}

/** A compiled list of patterns: `matches(topic)` is true if any pattern matches. */
export interface PatternSet {
  readonly patterns: readonly string[];
  matches(topic: string): boolean;
}

export const EMPTY_PATTERNS: PatternSet = { patterns: [], matches: () => false };

/** Compiles patterns; throws on an invalid one (the caller turns that into a coded rejection). */
export function compilePatterns(patterns: readonly string[]): PatternSet {
  if (patterns.length === 0) return EMPTY_PATTERNS;
  if (patterns.length > MAX_PATTERNS) throw new Error(`at most ${MAX_PATTERNS} patterns`);
  const exact = new Set<string>();
  const wild: string[] = [];
  for (const p of patterns) {
    const err = patternError(p);
    if (err) throw new Error(err);
    if (p.includes('*') || p.endsWith('>')) wild.push(p);
    else exact.add(p);
  }
  return {
    patterns: [...patterns],
    matches: (topic) => exact.has(topic) || wild.some((p) => matchPattern(p, topic)),
  };
}
