// Fuzzing in the suite: every input that ever failed (test/fuzz/regressions/<target>/) is run again through
// the fuzz child's checks, and every target gets a short seeded run (`npm run fuzz` runs them longer).
// The children import dist/: `npm run build` first (npm test does).
import { readFileSync, readdirSync, existsSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { pathToFileURL } from 'node:url';

// plain ES modules shared with scripts/fuzz.mjs (imported by URL: they have no types)
type Harness = {
  fuzz(o: {
    target: string;
    seconds: number;
    seed: number;
    failuresDir?: string;
  }): Promise<{ inputs: number; failures: Failure[] }>;
  runInputs(
    target: string,
    inputs: { name: string; bytes: Uint8Array }[],
  ): Promise<{ failures: Failure[]; outcomes: { name: string; outcome: string }[] }>;
};
const { fuzz, runInputs } = (await import(pathToFileURL(join(__dirname, 'fuzz', 'harness.mjs')).href)) as Harness;
const { TARGET_NAMES } = (await import(pathToFileURL(join(__dirname, 'fuzz', 'targets.mjs')).href)) as {
  TARGET_NAMES: string[];
};

type Failure = { name?: string; kind: string; message: string; file?: string };
const REGRESSIONS = join(__dirname, 'fuzz', 'regressions');
const SECONDS = Number(process.env.DDPM_FUZZ_SECONDS ?? 2);

describe('fuzz regressions: every input that ever failed is a typed error (or a finite result) now', () => {
  for (const target of TARGET_NAMES) {
    const dir = join(REGRESSIONS, target);
    const names = existsSync(dir)
      ? readdirSync(dir)
          .filter((n) => !n.endsWith('.txt'))
          .sort()
      : [];
    it.skipIf(names.length === 0)(`${target}: ${names.length} saved input(s)`, async () => {
      const inputs = names.map((name) => ({ name, bytes: new Uint8Array(readFileSync(join(dir, name))) }));
      const { failures, outcomes } = await runInputs(target, inputs);
      expect(failures).toEqual([]);
      expect(outcomes.map((o) => o.name)).toEqual(names);
    });
  }

  it("the regressions cover every target that has known failures, and the issue's cases", () => {
    for (const t of ['unet-config', 'scheduler-config', 'chain-state', 'safetensors', 'checkpoint']) {
      expect(readdirSync(join(REGRESSIONS, t)).length, t).toBeGreaterThan(0);
    }
  });
});

describe(`short fuzz of every target (${SECONDS} s each, seed 1)`, () => {
  for (const target of TARGET_NAMES) {
    it(target, async () => {
      const failuresDir = mkdtempSync(join(tmpdir(), `ddpm-fuzz-${target}-`));
      const r = await fuzz({ target, seconds: SECONDS, seed: 1, failuresDir });
      expect(r.inputs).toBeGreaterThan(10);
      // a failure names the saved input: copy it to test/fuzz/regressions/<target>/ once fixed
      expect(r.failures.map((f) => `${f.kind}: ${f.message} (${f.file})`)).toEqual([]);
    });
  }
});
