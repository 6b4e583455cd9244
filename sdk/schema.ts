/**
 * Typed topics without bundling a validation library: a schema is anything with `parse` (zod,
 * and most others) or `safeParse`, or a plain function. Duck-typed, so zod stays the app's choice.
 */
export type SafeParseResult<T> = { success: true; data: T } | { success: false; error: unknown };

export type Schema<T> = { parse(input: unknown): T } | { safeParse(input: unknown): SafeParseResult<T> } | ((input: unknown) => T);

/** The type a schema produces. */
export type Infer<S> = S extends { parse(input: unknown): infer T }
  ? T
  : S extends { safeParse(input: unknown): SafeParseResult<infer T> }
    ? T
    : S extends (input: unknown) => infer T
      ? T
      : unknown;

export type Validated<T> = { ok: true; value: T } | { ok: false; error: unknown };

/** Runs a schema without throwing; no schema means the value passes as is. */
export function validate<T>(schema: Schema<T> | undefined, input: unknown): Validated<T> {
  if (!schema) return { ok: true, value: input as T };
  try {
    if (typeof schema === 'function') return { ok: true, value: schema(input) };
    if ('safeParse' in schema && typeof schema.safeParse === 'function') {
      const r = schema.safeParse(input);
      return r.success ? { ok: true, value: r.data } : { ok: false, error: r.error };
    }
    return { ok: true, value: (schema as { parse(input: unknown): T }).parse(input) };
  } catch (error) {
    return { ok: false, error };
  }
}

/** A JSON Merge Patch of T: every key optional, `null` deletes it. */
export type MergePatch<T> = T extends readonly unknown[] ? T : T extends object ? { [K in keyof T]?: MergePatch<T[K]> | null } : T;
