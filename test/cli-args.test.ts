// Flag parsing of the ddpm command, in process (the CLI end to end is test/cli.test.ts).
import { afterEach, describe, expect, it, vi } from 'vitest';
import { normalizeArgs, parseCommand, type OptionSpec } from '../src/cli/args.js';
import { closest, editDistance } from '../src/cli/suggest.js';
import { describeError } from './helpers/errors.js';

const OPTIONS = {
  steps: { type: 'string' },
  seed: { type: 'string' },
  eta: { type: 'string' },
  out: { type: 'string' },
  json: { type: 'boolean' },
} satisfies OptionSpec;
const HELP = 'usage: ddpm sample [options]\n\n  --steps N   …';
const parse = (...argv: string[]) => parseCommand(argv, OPTIONS, HELP);

afterEach(() => {
  vi.restoreAllMocks();
});

describe('editDistance / closest', () => {
  it('counts insertions, deletions and substitutions', () => {
    expect(editDistance('', '')).toBe(0);
    expect(editDistance('steps', 'steps')).toBe(0);
    expect(editDistance('step', 'steps')).toBe(1);
    expect(editDistance('stpes', 'steps')).toBe(2); // a swap is two substitutions
    expect(editDistance('kitten', 'sitting')).toBe(3);
    expect(editDistance('', 'abc')).toBe(3);
  });

  it('suggests only within two edits, the nearest first', () => {
    expect(closest('stpes', ['seed', 'steps', 'eta'])).toBe('steps');
    expect(closest('sed', ['seed', 'steps'])).toBe('seed');
    expect(closest('bogus', ['seed', 'steps', 'eta'])).toBeUndefined();
    expect(closest('smaple', ['sample', 'train', 'nll'])).toBe('sample');
  });
});

describe('parseCommand', () => {
  it('names an unknown flag with the nearest known one, in one line', () => {
    expect(describeError(() => parse('--stpes', '5'))).toBe(
      'INVALID_ARGUMENT: unknown option --stpes (did you mean --steps?)',
    );
    expect(describeError(() => parse('--sed=3'))).toBe('INVALID_ARGUMENT: unknown option --sed (did you mean --seed?)');
    expect(describeError(() => parse('--quite'))).toBe(
      'INVALID_ARGUMENT: unknown option --quite (did you mean --quiet?)',
    );
    expect(describeError(() => parse('--bogus'))).toBe(
      "INVALID_ARGUMENT: unknown option --bogus (try 'ddpm sample --help')",
    );
    expect(describeError(() => parse('-x'))).toBe("INVALID_ARGUMENT: unknown option -x (try 'ddpm sample --help')");
  });

  it('takes a negative number as a value, in both spellings', () => {
    expect(parse('--eta', '-0.5', '--seed', '-3')).toEqual({ eta: '-0.5', seed: '-3' });
    expect(parse('--eta=-.5', '--steps', '-Infinity')).toEqual({ eta: '-.5', steps: '-Infinity' });
    expect(parse('--out', '-')).toEqual({ out: '-' });
  });

  it('a flag without its value, or a boolean with one, is a one-line error', () => {
    expect(describeError(() => parse('--steps'))).toBe(
      "INVALID_ARGUMENT: --steps needs a value (try 'ddpm sample --help')",
    );
    expect(describeError(() => parse('--steps', '--seed', '1'))).toMatch(
      /^INVALID_ARGUMENT: --steps needs a value, found option '--seed' \(write --steps=VALUE/,
    );
    expect(describeError(() => parse('--json=yes'))).toBe(
      "INVALID_ARGUMENT: --json takes no value, found '--json=yes'",
    );
    expect(describeError(() => parse('-5'))).toMatch(/^INVALID_ARGUMENT: unexpected argument '-5'/);
  });

  it('keeps short flags, grouped or not, and --help prints the help', () => {
    expect(parse('-q', '--json')).toEqual({ quiet: true, json: true });
    const log = vi.spyOn(console, 'log').mockImplementation(() => {});
    expect(parse('-qh')).toBeUndefined();
    expect(log).toHaveBeenCalledWith(HELP);
  });

  it('normalizeArgs leaves everything after -- alone', () => {
    expect(normalizeArgs(['--steps', '-1', '--', '--whatever'], OPTIONS)).toEqual(['--steps=-1', '--', '--whatever']);
  });
});
