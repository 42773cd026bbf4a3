// Running the built `ddpm` command (dist/cli.js) the way a user would, from the repository root.
import { type SpawnSyncReturns, spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { expect } from 'vitest';

export const root = join(__dirname, '..', '..');
export const cliPath = join(root, 'dist', 'cli.js');

export type CliResult = SpawnSyncReturns<string>;

/** `ddpm ...args`, synchronously; stdout and stderr as text. */
export function ddpm(args: string[], o: { timeout?: number; cwd?: string } = {}): CliResult {
  return spawnSync(process.execPath, [cliPath, ...args], {
    encoding: 'utf8',
    timeout: o.timeout ?? 60_000,
    cwd: o.cwd ?? root,
  });
}

/** A user mistake: exit code 1, nothing on stdout, exactly one line on stderr, matching `re`. */
export function expectOneLineError(r: CliResult, re: RegExp): void {
  expect(r.status, r.stderr).toBe(1);
  expect(r.stdout).toBe('');
  expect(r.stderr.trimEnd().split('\n'), r.stderr).toHaveLength(1);
  expect(r.stderr).toMatch(re);
}

/** `node scripts/<name> ...args`, synchronously (the scripts import dist/, so `npm run build` first). */
export function runScript(name: string, args: string[], o: { timeout?: number; cwd?: string } = {}): CliResult {
  return spawnSync(process.execPath, [join(root, 'scripts', name), ...args], {
    encoding: 'utf8',
    timeout: o.timeout ?? 120_000,
    cwd: o.cwd ?? root,
  });
}

/** The fingerprint scripts/sweep-common.mjs records of a model (plain JS, imported untyped), for crafted results. */
export async function sweepFingerprint(dir: string): Promise<string> {
  const m = (await import(join(root, 'scripts', 'sweep-common.mjs') as string)) as {
    modelFingerprint(dir: string): Promise<{ dir: string; fingerprint: string }>;
  };
  return (await m.modelFingerprint(dir)).fingerprint;
}
