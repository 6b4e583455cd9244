/**
 * Payload schemas for namespaces: a JSON Schema subset, written in the (JSON) config and checked
 * on every publish (client and HTTP API) without extra dependencies. Supported keywords:
 *
 *   type (string or list of: "null" "boolean" "number" "integer" "string" "array" "object"),
 *   enum, const, anyOf,
 *   minLength, maxLength, pattern          (strings; pattern is an ECMAScript regex, unanchored)
 *   minimum, maximum, exclusiveMinimum, exclusiveMaximum  (numbers, numeric forms)
 *   items, minItems, maxItems              (arrays; items is one schema for every element)
 *   properties, required, additionalProperties (boolean or schema), minProperties, maxProperties
 *   title, description, $comment           (annotations, ignored)
 *
 * Any other keyword is a config error, so a schema never silently checks less than it says.
 */
import { z } from 'zod';

export const SCHEMA_TYPES = ['null', 'boolean', 'number', 'integer', 'string', 'array', 'object'] as const;
type SchemaType = (typeof SCHEMA_TYPES)[number];

export interface JsonSchema {
  type?: SchemaType | SchemaType[];
  enum?: unknown[];
  const?: unknown;
  anyOf?: JsonSchema[];
  minLength?: number;
  maxLength?: number;
  pattern?: string;
  minimum?: number;
  maximum?: number;
  exclusiveMinimum?: number;
  exclusiveMaximum?: number;
  items?: JsonSchema;
  minItems?: number;
  maxItems?: number;
  properties?: Record<string, JsonSchema>;
  required?: string[];
  additionalProperties?: boolean | JsonSchema;
  minProperties?: number;
  maxProperties?: number;
  title?: string;
  description?: string;
  $comment?: string;
}

const Count = z.number().int().min(0);
const TypeName = z.enum(SCHEMA_TYPES);

/** The config-side validator of a schema (strict: unknown keywords are errors). */
export const JsonSchemaConfig: z.ZodType<JsonSchema> = z.lazy(() =>
  z
    .object({
      type: z.union([TypeName, z.array(TypeName).min(1)]).optional(),
      enum: z.array(z.unknown()).min(1).optional(),
      const: z.unknown().optional(),
      anyOf: z.array(JsonSchemaConfig).min(1).optional(),
      minLength: Count.optional(),
      maxLength: Count.optional(),
      pattern: z
        .string()
        .refine((p) => {
          try {
            new RegExp(p, 'u');
            return true;
          } catch {
            return false;
          }
        }, 'not a valid regular expression')
        .optional(),
      minimum: z.number().optional(),
      maximum: z.number().optional(),
      exclusiveMinimum: z.number().optional(),
      exclusiveMaximum: z.number().optional(),
      items: JsonSchemaConfig.optional(),
      minItems: Count.optional(),
      maxItems: Count.optional(),
      properties: z.record(z.string(), JsonSchemaConfig).optional(),
      required: z.array(z.string()).optional(),
      additionalProperties: z.union([z.boolean(), JsonSchemaConfig]).optional(),
      minProperties: Count.optional(),
      maxProperties: Count.optional(),
      title: z.string().optional(),
      description: z.string().optional(),
      $comment: z.string().optional(),
    })
    .strict(),
);

/** Returns null when `data` matches, else the first mismatch as "path: reason". */
export type SchemaCheck = (data: unknown) => string | null;

export function compileSchema(schema: JsonSchema): SchemaCheck {
  const check = compile(schema);
  return (data) => check(data, 'data');
}

type Check = (v: unknown, path: string) => string | null;

function compile(s: JsonSchema): Check {
  const checks: Check[] = [];
  if (s.type !== undefined) {
    const types = Array.isArray(s.type) ? s.type : [s.type];
    const label = types.join(' or ');
    checks.push((v, path) => (types.some((t) => isType(v, t)) ? null : `${path}: must be ${label}`));
  }
  if (s.const !== undefined) {
    const c = s.const;
    checks.push((v, path) => (deepEqual(v, c) ? null : `${path}: must equal ${short(c)}`));
  }
  if (s.enum !== undefined) {
    const options = s.enum;
    checks.push((v, path) => (options.some((o) => deepEqual(v, o)) ? null : `${path}: must be one of ${short(options)}`));
  }
  if (s.anyOf !== undefined) {
    const alts = s.anyOf.map(compile);
    checks.push((v, path) => (alts.some((a) => a(v, path) === null) ? null : `${path}: matches none of the allowed forms`));
  }
  // Strings
  if (s.minLength !== undefined || s.maxLength !== undefined || s.pattern !== undefined) {
    const { minLength = 0, maxLength = Infinity } = s;
    const re = s.pattern === undefined ? null : new RegExp(s.pattern, 'u');
    checks.push((v, path) => {
      if (typeof v !== 'string') return null;
      const n = [...v].length; // code points, as JSON Schema counts
      if (n < minLength) return `${path}: shorter than ${minLength} characters`;
      if (n > maxLength) return `${path}: longer than ${maxLength} characters`;
      if (re && !re.test(v)) return `${path}: does not match the pattern`;
      return null;
    });
  }
  // Numbers
  if (s.minimum !== undefined || s.maximum !== undefined || s.exclusiveMinimum !== undefined || s.exclusiveMaximum !== undefined) {
    const { minimum, maximum, exclusiveMinimum, exclusiveMaximum } = s;
    checks.push((v, path) => {
      if (typeof v !== 'number') return null;
      if (minimum !== undefined && v < minimum) return `${path}: must be >= ${minimum}`;
      if (maximum !== undefined && v > maximum) return `${path}: must be <= ${maximum}`;
      if (exclusiveMinimum !== undefined && v <= exclusiveMinimum) return `${path}: must be > ${exclusiveMinimum}`;
      if (exclusiveMaximum !== undefined && v >= exclusiveMaximum) return `${path}: must be < ${exclusiveMaximum}`;
      return null;
    });
  }
  // Arrays
  if (s.items !== undefined || s.minItems !== undefined || s.maxItems !== undefined) {
    const item = s.items === undefined ? null : compile(s.items);
    const { minItems = 0, maxItems = Infinity } = s;
    checks.push((v, path) => {
      if (!Array.isArray(v)) return null;
      if (v.length < minItems) return `${path}: fewer than ${minItems} items`;
      if (v.length > maxItems) return `${path}: more than ${maxItems} items`;
      if (item) {
        for (let i = 0; i < v.length; i++) {
          const err = item(v[i], `${path}[${i}]`);
          if (err) return err;
        }
      }
      return null;
    });
  }
  // Objects
  if (
    s.properties !== undefined ||
    s.required !== undefined ||
    s.additionalProperties !== undefined ||
    s.minProperties !== undefined ||
    s.maxProperties !== undefined
  ) {
    const props = new Map(Object.entries(s.properties ?? {}).map(([k, v]) => [k, compile(v)]));
    const required = s.required ?? [];
    const extra =
      s.additionalProperties === undefined || s.additionalProperties === true
        ? null
        : s.additionalProperties === false
          ? false
          : compile(s.additionalProperties);
    const { minProperties = 0, maxProperties = Infinity } = s;
    checks.push((v, path) => {
      if (!isObject(v)) return null;
      const keys = Object.keys(v);
      if (keys.length < minProperties) return `${path}: fewer than ${minProperties} properties`;
      if (keys.length > maxProperties) return `${path}: more than ${maxProperties} properties`;
      for (const r of required) if (!Object.hasOwn(v, r)) return `${path}: missing required property ${short(r)}`;
      for (const k of keys) {
        const sub = props.get(k);
        const where = `${path}.${k.length > 40 ? `${k.slice(0, 40)}…` : k}`;
        if (sub) {
          const err = sub(v[k], where);
          if (err) return err;
        } else if (extra === false) {
          return `${where}: property not allowed`;
        } else if (extra) {
          const err = extra(v[k], where);
          if (err) return err;
        }
      }
      return null;
    });
  }
  return (v, path) => {
    for (const c of checks) {
      const err = c(v, path);
      if (err) return err;
    }
    return null;
  };
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && !(v instanceof Uint8Array);
}

function isType(v: unknown, t: SchemaType): boolean {
  switch (t) {
    case 'null':
      return v === null;
    case 'boolean':
      return typeof v === 'boolean';
    case 'number':
      return typeof v === 'number' && Number.isFinite(v);
    case 'integer':
      return typeof v === 'number' && Number.isInteger(v);
    case 'string':
      return typeof v === 'string';
    case 'array':
      return Array.isArray(v);
    case 'object':
      return isObject(v);
  }
}

function deepEqual(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null) return false;
  if (Array.isArray(a) !== Array.isArray(b)) return false;
  if (Array.isArray(a)) {
    const bb = b as unknown[];
    return a.length === bb.length && a.every((x, i) => deepEqual(x, bb[i]));
  }
  const ka = Object.keys(a);
  const kb = Object.keys(b);
  return ka.length === kb.length && ka.every((k) => Object.hasOwn(b, k) && deepEqual((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k]));
}

function short(v: unknown): string {
  const s = JSON.stringify(v) ?? String(v);
  return s.length > 60 ? `${s.slice(0, 60)}…` : s;
}
