// Typed checks for the JSON the library reads (model configs, scheduler configs, sampling-chain state …).
//
// Two traps this file exists to avoid:
// - Prototype names. `key in obj` and `obj[key]` see Object.prototype, so a config key or dtype named
//   `toString`, `constructor` or `valueOf` would pass as known. Every lookup here is an own-property one.
// - Unreadable messages. Values are printed as (truncated) JSON, never with String(): an object is shown
//   as `{"a":1}`, not `[object Object]`, and a 10-million-entry array does not become a 100 MB message.
import { DdpmError, type DdpmErrorCode } from './errors.js';

/** `obj[key]` if obj has `key` as an own property, else undefined (never an inherited value). */
export function own(obj: object, key: string): unknown {
  return Object.hasOwn(obj, key) ? (obj as Record<string, unknown>)[key] : undefined;
}

/** Whether `key` is an own property of obj (a safe `key in obj` for lookup tables). */
export function hasOwn(obj: object, key: string): boolean {
  return Object.hasOwn(obj, key);
}

/** A JSON object (not null, not an array). */
export function isObject(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

/** A value as JSON for a message, at most `max` characters (undefined, NaN, bigint and cycles included). */
export function show(v: unknown, max = 80): string {
  let s: string;
  if (v === undefined) s = 'undefined (missing)';
  else if (typeof v === 'number') s = Number.isFinite(v) ? JSON.stringify(v) : String(v);
  else if (typeof v === 'bigint') s = `${v}n`;
  else if (typeof v === 'function' || typeof v === 'symbol') s = typeof v;
  else if (Array.isArray(v) && v.length > 16) {
    s = `[${v
      .slice(0, 8)
      .map((x) => show(x, 20))
      .join(',')},… (${v.length} entries)]`;
  } else {
    try {
      s = JSON.stringify(v) ?? String(v);
    } catch {
      s = Array.isArray(v) ? 'an array' : 'an object';
    }
  }
  return s.length > max ? `${s.slice(0, max - 1)}…` : s;
}

/**
 * One checker per document: `where` names the file or the state (`config.json`, `sampling state`), and
 * every failure is `DdpmError(code, "<where>: <key> must be <expected>, found <JSON>")`.
 */
export class Checker {
  constructor(
    readonly where: string,
    readonly code: DdpmErrorCode = 'FORMAT',
  ) {}

  fail(key: string, expected: string, found: unknown, code = this.code): never {
    throw new DdpmError(code, `${this.where}: ${key} must be ${expected}, found ${show(found)}`);
  }

  object(key: string, v: unknown): Record<string, unknown> {
    if (!isObject(v)) this.fail(key, 'a JSON object', v);
    return v;
  }

  /** An integer in [min, max]; the range is part of the message (it names the cap). */
  int(key: string, v: unknown, min: number, max = Number.MAX_SAFE_INTEGER, code = this.code): number {
    if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) {
      this.fail(
        key,
        max === Number.MAX_SAFE_INTEGER ? `an integer >= ${min}` : `an integer in [${min}, ${max}]`,
        v,
        code,
      );
    }
    return v;
  }

  /** A finite number in the range (open ends with minOpen / maxOpen). */
  number(
    key: string,
    v: unknown,
    o: { min?: number; max?: number; minOpen?: boolean; maxOpen?: boolean } = {},
    code = this.code,
  ): number {
    const { min = -Infinity, max = Infinity } = o;
    const ok =
      typeof v === 'number' &&
      Number.isFinite(v) &&
      (o.minOpen ? v > min : v >= min) &&
      (o.maxOpen ? v < max : v <= max);
    if (!ok) {
      const range =
        min === -Infinity && max === Infinity
          ? 'a finite number'
          : `a finite number in ${o.minOpen ? '(' : '['}${min}, ${max}${o.maxOpen ? ')' : ']'}`;
      this.fail(key, range, v, code);
    }
    return v as number;
  }

  bool(key: string, v: unknown, code = this.code): boolean {
    if (typeof v !== 'boolean') this.fail(key, 'true or false', v, code);
    return v;
  }

  string(key: string, v: unknown, maxLength = 1024): string {
    if (typeof v !== 'string' || v.length > maxLength) this.fail(key, `a string of at most ${maxLength} characters`, v);
    return v;
  }

  oneOf<T extends string | number | boolean | null>(
    key: string,
    v: unknown,
    allowed: readonly T[],
    code = this.code,
  ): T {
    if (!allowed.includes(v as T))
      this.fail(key, `one of ${allowed.map((a) => JSON.stringify(a)).join(', ')}`, v, code);
    return v as T;
  }

  /** An array of length in [minLength, maxLength] (checked before any element is looked at). */
  array(key: string, v: unknown, minLength: number, maxLength: number): unknown[] {
    if (!Array.isArray(v) || v.length < minLength || v.length > maxLength) {
      this.fail(
        key,
        minLength === maxLength
          ? `an array of ${minLength} entries`
          : `an array of ${minLength} to ${maxLength} entries`,
        v,
      );
    }
    return v;
  }

  /** An array of integers in [min, max], of length in [minLength, maxLength]. */
  intArray(key: string, v: unknown, o: { minLength: number; maxLength: number; min: number; max: number }): number[] {
    const a = this.array(key, v, o.minLength, o.maxLength);
    a.forEach((x, i) => this.int(`${key}[${i}]`, x, o.min, o.max));
    return a as number[];
  }

  /** Refuses keys of obj outside `allowed` (own keys only; keys starting with `ignorePrefix` pass). */
  knownKeys(obj: Record<string, unknown>, allowed: readonly string[], what: string, ignorePrefix?: string): void {
    const extra = Object.keys(obj).filter(
      (k) => !allowed.includes(k) && !(ignorePrefix !== undefined && k.startsWith(ignorePrefix)),
    );
    if (extra.length) {
      throw new DdpmError(
        this.code,
        `${this.where}: unsupported ${what} key${extra.length > 1 ? 's' : ''} ${extra
          .slice(0, 5)
          .map((k) => JSON.stringify(k))
          .join(', ')}${extra.length > 5 ? ` (and ${extra.length - 5} more)` : ''}`,
      );
    }
  }
}

/** The product of dims as a number, or Infinity when it passes `cap` (no overflow, no huge loop). */
export function product(dims: readonly number[], cap = Number.MAX_SAFE_INTEGER): number {
  let p = 1;
  for (const d of dims) {
    p *= d;
    if (p > cap) return Infinity;
  }
  return p;
}
