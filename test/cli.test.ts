import { spawnSync } from 'node:child_process';
import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

const cli = join(__dirname, '..', 'dist', 'cli.js');
const ddpm = (...args: string[]) => spawnSync(process.execPath, [cli, ...args], { encoding: 'utf8', timeout: 30_000 });

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
      ['info', '--threads', '0'], ['nonsense'], ['info', '--bogus'], ['info', '--simd', 'avx'],
      // checked before anything is timed or loaded
      ['bench', '--seconds', '0'], ['bench', '--threads', 'many'], ['bench', '--simd', 'avx'],
      ['nll'], ['nll', '--data', 'mnist', '--timesteps', 'samples:0'], ['nll', '--data', 'mnist', '--n', '-'],
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
    for (const [cmd, flag] of [['sample', '--guidance W'], ['train', '--checkpoint-every N'], ['nll', '--timesteps MODE'], ['bench', '--seconds S'], ['info', '--simd']]) {
      const r = ddpm(cmd, '--help');
      expect(r.status).toBe(0);
      expect(r.stdout).toMatch(new RegExp(`^usage: ddpm ${cmd}`));
      expect(r.stdout).toContain(flag);
    }
  });
});
