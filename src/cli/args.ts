// Option parsing shared by the subcommands: node:util parseArgs (strict: an unknown flag is an error),
// then every value checked with a one-line DdpmError naming the flag, the range and what was given.
import { parseArgs } from 'node:util';
import { DdpmError } from '../errors.js';
import { closest } from './suggest.js';

export type OptionSpec = Record<string, { type: 'string' | 'boolean'; short?: string }>;

/** Options every command takes. */
const COMMON: OptionSpec = { help: { type: 'boolean', short: 'h' }, quiet: { type: 'boolean', short: 'q' } };

/** A value that starts with '-' but is a number (`--eta -0.5`, `--guidance -1`), not an option. */
const NEGATIVE_NUMBER = /^-(\d|\.\d|Infinity$)/;

/**
 * Parses argv against `options` (plus --help and --quiet); returns undefined after printing help.
 * Unknown flags get a one-line error with the nearest known flag; a negative number is accepted as a
 * value (`--seed -1` reaches the range check instead of being taken for a flag).
 */
export function parseCommand<O extends OptionSpec>(
  argv: string[],
  options: O,
  help: string,
): ({ [K in keyof O]?: O[K]['type'] extends 'boolean' ? boolean : string } & { quiet?: boolean }) | undefined {
  const all: OptionSpec = { ...options, ...COMMON };
  const command = /^usage: ddpm (\S+)/.exec(help)?.[1];
  const { values, positionals } = parseArgs({
    args: normalizeArgs(argv, all, command),
    options: all,
    strict: true,
    allowPositionals: true,
  });
  if ((values as { help?: boolean }).help) {
    console.log(help);
    return undefined;
  }
  if (positionals.length)
    throw new DdpmError(
      'INVALID_ARGUMENT',
      `unexpected argument '${positionals[0]}' (options start with --; try --help)`,
    );
  return values as never;
}

/**
 * Checks every flag against `options` before node:util parseArgs sees them, so mistakes are named the way a
 * user typed them, and rewrites `--flag -3` as `--flag=-3` (parseArgs would refuse it as ambiguous).
 */
export function normalizeArgs(argv: readonly string[], options: OptionSpec, command?: string): string[] {
  const tryHelp = command ? `try 'ddpm ${command} --help'` : `try --help`;
  const byShort = new Map(Object.entries(options).flatMap(([name, o]) => (o.short ? [[o.short, name] as const] : [])));
  const out: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--') {
      out.push(...argv.slice(i));
      break;
    }
    let name: string;
    let inlineValue: boolean;
    let shown: string;
    if (a.startsWith('--')) {
      const eq = a.indexOf('=');
      name = a.slice(2, eq < 0 ? undefined : eq);
      inlineValue = eq >= 0;
      shown = `--${name}`;
      if (!Object.hasOwn(options, name)) {
        const near = closest(name, Object.keys(options));
        throw new DdpmError(
          'INVALID_ARGUMENT',
          `unknown option ${shown} (${near ? `did you mean --${near}?` : tryHelp})`,
        );
      }
    } else if (a.startsWith('-') && a.length > 1 && !NEGATIVE_NUMBER.test(a)) {
      // -h, -q, or several short flags together (-hq); a short string option takes the next value
      const letters = [...a.slice(1)];
      const unknown = letters.find((c) => !byShort.has(c));
      if (unknown !== undefined) throw new DdpmError('INVALID_ARGUMENT', `unknown option -${unknown} (${tryHelp})`);
      if (letters.length > 1 || options[byShort.get(letters[0])!].type === 'boolean') {
        out.push(a);
        continue;
      }
      name = byShort.get(letters[0])!;
      inlineValue = false;
      shown = a;
    } else {
      // parseArgs would take a stray '-5' for a short flag: name it as the stray argument it is
      if (a.startsWith('-') && a.length > 1)
        throw new DdpmError('INVALID_ARGUMENT', `unexpected argument '${a}' (options start with --; try --help)`);
      out.push(a);
      continue;
    }
    const spec = options[name];
    if (spec.type === 'boolean') {
      if (inlineValue) throw new DdpmError('INVALID_ARGUMENT', `${shown} takes no value, found '${a}'`);
      out.push(a);
    } else if (inlineValue) {
      out.push(a);
    } else {
      const value = argv[i + 1];
      if (value === undefined) throw new DdpmError('INVALID_ARGUMENT', `${shown} needs a value (${tryHelp})`);
      if (value.startsWith('-') && value !== '-' && !NEGATIVE_NUMBER.test(value)) {
        throw new DdpmError(
          'INVALID_ARGUMENT',
          `${shown} needs a value, found option '${value}' (write ${shown}=VALUE for a value starting with -)`,
        );
      }
      out.push(`--${name}=${value}`);
      i++;
    }
  }
  return out;
}

function bad(flag: string, want: string, found: string): never {
  throw new DdpmError('INVALID_ARGUMENT', `--${flag} must be ${want}, found '${found}'`);
}

/** An integer option in [min, max]; `fallback` when absent. */
export function intOption(
  flag: string,
  v: string | undefined,
  fallback: number,
  min: number,
  max = Number.MAX_SAFE_INTEGER,
): number {
  if (v === undefined) return fallback;
  const n = /^[+-]?\d+$/.test(v.trim()) ? Number(v) : NaN;
  if (!Number.isSafeInteger(n) || n < min || n > max)
    bad(flag, max === Number.MAX_SAFE_INTEGER ? `an integer >= ${min}` : `an integer in [${min}, ${max}]`, v);
  return n;
}

/** A finite number in [min, max] (open ends with minOpen/maxOpen). */
export function numberOption(
  flag: string,
  v: string | undefined,
  fallback: number,
  min: number,
  max: number,
  o: { minOpen?: boolean; maxOpen?: boolean } = {},
): number {
  if (v === undefined) return fallback;
  const n = v.trim() === '' ? NaN : Number(v);
  const ok = Number.isFinite(n) && (o.minOpen ? n > min : n >= min) && (o.maxOpen ? n < max : n <= max);
  if (!ok) bad(flag, `a number in ${o.minOpen ? '(' : '['}${min}, ${max}${o.maxOpen ? ')' : ']'}`, v);
  return n;
}

export function choiceOption<T extends string>(
  flag: string,
  v: string | undefined,
  fallback: T,
  allowed: readonly T[],
): T {
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
