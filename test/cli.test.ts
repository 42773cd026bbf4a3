// The ddpm command end to end, from dist/ (run `npm run build` first).
import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { cliPath as cli, ddpm as run, expectOneLineError, root } from './helpers/cli.js';

const ddpm = (...args: string[]) => run(args, { timeout: 30_000 });

describe('ddpm CLI', () => {
  it('is executable, so `npx ddpm` can run it (the build sets the mode)', () => {
    expect(statSync(cli).mode & 0o111).not.toBe(0);
    expect(readFileSync(cli, 'utf8').startsWith('#!/usr/bin/env node')).toBe(true);
  });

  it('info prints the build chosen and why', () => {
    const r = ddpm('info', '--threads', '2', '--simd', 'simd');
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/^build {5}simd-mt$/m);
    expect(r.stdout).toMatch(/^threads {3}2$/m);
    expect(r.stdout).toMatch(/^why .*forced by options\.simd/m);
  });

  it('user mistakes are one line on stderr and exit code 1, no stack trace', () => {
    const cases = [
      ['info', '--threads', '0'],
      ['nonsense'],
      ['info', '--bogus'],
      ['info', '--simd', 'avx'],
      // checked before anything is timed or loaded
      ['bench', '--seconds', '0'],
      ['bench', '--threads', 'many'],
      ['bench', '--simd', 'avx'],
      ['nll'],
      ['nll', '--data', 'mnist', '--timesteps', 'samples:0'],
      ['nll', '--data', 'mnist', '--n', '-'],
    ];
    for (const args of cases) {
      const r = ddpm(...args);
      expect(r.status).toBe(1);
      expect(r.stderr.trim().split('\n')).toHaveLength(1);
      expect(r.stderr).toMatch(/^ddpm: /);
      expect(r.stderr).not.toMatch(/\n\s+at /);
    }
  });

  it('every command has --help', () => {
    expect(ddpm('--help').stdout).toMatch(/sample .*\n.*train .*\n.*nll .*\n.*bench .*\n.*info /);
    for (const [cmd, flag] of [
      ['sample', '--guidance W'],
      ['train', '--checkpoint-every N'],
      ['nll', '--timesteps MODE'],
      ['bench', '--seconds S'],
      ['info', '--simd'],
    ]) {
      const r = ddpm(cmd, '--help');
      expect(r.status).toBe(0);
      expect(r.stdout).toMatch(new RegExp(`^usage: ddpm ${cmd}`));
      expect(r.stdout).toContain(flag);
    }
  });

  it('--version prints the package name and version from package.json', () => {
    const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'));
    for (const flag of ['--version', '-V']) {
      const r = ddpm(flag);
      expect(r.status).toBe(0);
      expect(r.stdout).toBe(`${pkg.name} ${pkg.version}\n`);
    }
  });

  it("help <command> prints that command's help; help alone the general one", () => {
    for (const cmd of ['sample', 'train', 'nll', 'eval', 'bench', 'info']) {
      const r = ddpm('help', cmd);
      expect(r.status).toBe(0);
      expect(r.stdout).toBe(ddpm(cmd, '--help').stdout);
      expect(r.stdout).toMatch(new RegExp(`^usage: ddpm ${cmd}`));
    }
    expect(ddpm('help').stdout).toBe(ddpm('--help').stdout);
    expect(ddpm('--help').stdout).toMatch(/ddpm help <command>/);
    expectOneLineError(ddpm('help', 'smaple'), /^ddpm: unknown command smaple \(did you mean sample\?\)\n$/);
  });

  it('a mistyped command or flag gets one line naming the nearest real one', () => {
    expectOneLineError(ddpm('smaple'), /^ddpm: unknown command smaple \(did you mean sample\?\)\n$/);
    expectOneLineError(ddpm('trian', '--steps', '3'), /^ddpm: unknown command trian \(did you mean train\?\)\n$/);
    expectOneLineError(ddpm('sample', '--stpes', '5'), /^ddpm: unknown option --stpes \(did you mean --steps\?\)\n$/);
    expectOneLineError(ddpm('info', '--thread=2'), /^ddpm: unknown option --thread \(did you mean --threads\?\)\n$/);
    expectOneLineError(ddpm('nll', '--bogus'), /^ddpm: unknown option --bogus \(try 'ddpm nll --help'\)\n$/);
    expectOneLineError(ddpm('wibble'), /^ddpm: unknown command wibble \(try 'ddpm --help'\)\n$/);
  });

  it('a negative number is a value, so the range check names it', () => {
    expectOneLineError(
      ddpm('nll', '--data', 'mnist', '--seed', '-1'),
      /^ddpm: --seed must be an integer in \[0, 4294967295\], found '-1'\n$/,
    );
    expectOneLineError(
      ddpm('bench', '--seconds', '-2'),
      /^ddpm: --seconds must be a number in \[0\.1, 60\], found '-2'\n$/,
    );
    expectOneLineError(ddpm('info', '--threads'), /^ddpm: --threads needs a value/);
  });

  it('info --json is one JSON object on stdout with what the engine chose', () => {
    const r = ddpm('info', '--json', '--threads', '2', '--simd', 'simd');
    expect(r.status).toBe(0);
    const info = JSON.parse(r.stdout);
    expect(r.stdout.trim().split('\n')).toHaveLength(1);
    expect(info).toMatchObject({
      runtime: 'node',
      build: 'simd-mt',
      simd: 'simd',
      threads: 2,
      fusedMadd: null,
      version: process.version,
    });
    expect(info.why.some((w: string) => /forced by options\.simd/.test(w))).toBe(true);
    expect(info.memoryLimit).toBeGreaterThan(0);
  });

  it('nll --json: the bound as JSON on stdout, its progress on stderr', () => {
    const args = ['nll', '--data', 'mnist', '--n', '2', '--batch', '2', '--timesteps', 'samples:1', '--threads', '1'];
    const r = ddpm(...args, '--json');
    expect(r.status, r.stderr).toBe(0);
    const j = JSON.parse(r.stdout);
    expect(Object.keys(j).sort()).toEqual([
      'bitsPerDim',
      'data',
      'decoderBpd',
      'images',
      'klBpd',
      'model',
      'priorBpd',
      'seed',
      'stdError',
      'timesteps',
    ]);
    expect(j).toMatchObject({ images: 2, data: 'mnist', timesteps: 'samples:1', seed: 0 });
    expect(j.bitsPerDim).toBeCloseTo(j.priorBpd + j.klBpd + j.decoderBpd, 10);
    expect(r.stderr).toMatch(/^nll .*2\/2/m);
    // the same numbers as the table a person reads
    const text = ddpm(...args, '--quiet');
    expect(text.stdout).toContain(`bits/dim  ${j.bitsPerDim.toFixed(4)} ± ${j.stdError.toFixed(4)}`);
  });
});
