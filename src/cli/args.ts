// Option parsing shared by the subcommands: node:util parseArgs (strict: an unknown flag is an error),
// then every value checked with a one-line DdpmError naming the flag, the range and what was given.
import { parseArgs } from 'node:util';
import { DdpmError } from '../errors.js';

export type OptionSpec = Record<string, { type: 'string' | 'boolean'; short?: string }>;

/** Parses argv against `options` (plus --help and --quiet); returns undefined after printing help. */
export function parseCommand<O extends OptionSpec>(argv: string[], options: O, help: string): { [K in keyof O]?: O[K]['type'] extends 'boolean' ? boolean : string } & { quiet?: boolean } | undefined {
  const { values, positionals } = parseArgs({
    args: joinNegativeValues(argv, options),
    options: { ...options, help: { type: 'boolean', short: 'h' }, quiet: { type: 'boolean', short: 'q' } },
    strict: true,
    allowPositionals: true,
  });
  if ((values as { help?: boolean }).help) {
    console.log(help);
    return undefined;
  }
  if (positionals.length) throw new DdpmError('INVALID_ARGUMENT', `unexpected argument '${positionals[0]}' (options start with --; try --help)`);
  return values as never;
}

/**
 * `--seed -1` → `--seed=-1`: parseArgs takes a value that starts with '-' for an option ("argument is
 * ambiguous"), so a negative number after a string option is joined to it; the option's own check then
 * says what range it takes.
 */
function joinNegativeValues(argv: string[], options: OptionSpec): string[] {
  const out: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const next = argv[i + 1];
    const long = a.startsWith('--') && !a.includes('=') ? a.slice(2) : undefined;
    const short = /^-[A-Za-z]$/.test(a) ? Object.keys(options).find((k) => Object.prototype.hasOwnProperty.call(options, k) && options[k].short === a[1]) : undefined;
    const name = long ?? short;
    const isString = name !== undefined && Object.prototype.hasOwnProperty.call(options, name) && options[name].type === 'string';
    if (isString && next !== undefined && /^-(\d|\.\d|Infinity|inf)/i.test(next)) {
      out.push(`--${name}=${next}`);
      i++;
    } else out.push(a);
  }
  return out;
}

function bad(flag: string, want: string, found: string): never {
  throw new DdpmError('INVALID_ARGUMENT', `--${flag} must be ${want}, found '${found}'`);
}

/** An integer option in [min, max]; `fallback` when absent. */
export function intOption(flag: string, v: string | undefined, fallback: number, min: number, max = Number.MAX_SAFE_INTEGER): number {
  if (v === undefined) return fallback;
  const n = /^[+-]?\d+$/.test(v.trim()) ? Number(v) : NaN;
  if (!Number.isSafeInteger(n) || n < min || n > max) bad(flag, max === Number.MAX_SAFE_INTEGER ? `an integer >= ${min}` : `an integer in [${min}, ${max}]`, v);
  return n;
}

/** A finite number in [min, max] (open ends with minOpen/maxOpen). */
export function numberOption(flag: string, v: string | undefined, fallback: number, min: number, max: number, o: { minOpen?: boolean; maxOpen?: boolean } = {}): number {
  if (v === undefined) return fallback;
  const n = v.trim() === '' ? NaN : Number(v);
  const ok = Number.isFinite(n) && (o.minOpen ? n > min : n >= min) && (o.maxOpen ? n < max : n <= max);
  if (!ok) bad(flag, `a number in ${o.minOpen ? '(' : '['}${min}, ${max}${o.maxOpen ? ')' : ']'}`, v);
  return n;
}

export function choiceOption<T extends string>(flag: string, v: string | undefined, fallback: T, allowed: readonly T[]): T {
  if (v === undefined) return fallback;
  if (!allowed.includes(v as T)) bad(flag, `one of ${allowed.join(', ')}`, v);
  return v as T;
}

/** --threads N|auto. */
export function threadsOption(v: string | undefined): number | 'auto' {
  return v === undefined || v === 'auto' ? 'auto' : intOption('threads', v, 1, 1, 256);
}

/** --seed: a safe integer >= 0. */
export function seedOption(v: string | undefined, fallback = 0): number {
  return intOption('seed', v, fallback, 0);
}
