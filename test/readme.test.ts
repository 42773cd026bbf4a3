// Every ```js block of README.md runs as written: each is saved into a fresh folder that depends on this
// package (node_modules/ddpm-wasm → the repo, so the built dist/ is what runs: `npm run build` first) and
// run with Node; it must exit 0 and leave what it says it writes.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';

const repo = join(__dirname, '..');
const readme = readFileSync(join(repo, 'README.md'), 'utf8');
const snippets = [...readme.matchAll(/^```js\n([\s\S]*?)^```$/gm)].map((m) => m[1]);
const dir = mkdtempSync(join(tmpdir(), 'ddpm-readme-'));
mkdirSync(join(dir, 'node_modules'));
symlinkSync(repo, join(dir, 'node_modules', 'ddpm-wasm'), 'dir');
writeFileSync(join(dir, 'package.json'), '{"name":"readme-snippets","private":true,"type":"module"}');
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('README.md', () => {
  it('has JS snippets, the first of them the pipeline', () => {
    expect(snippets.length).toBeGreaterThanOrEqual(2);
    expect(snippets[0]).toMatch(/DDPMPipeline\.fromPretrained/);
    expect(readme.split('\n').length).toBeLessThanOrEqual(200);
  });

  snippets.forEach((code, i) => {
    it(`snippet ${i + 1} runs as written`, () => {
      const file = join(dir, `snippet-${i + 1}.mjs`);
      writeFileSync(file, code);
      const r = spawnSync(process.execPath, [file], { cwd: dir, encoding: 'utf8', timeout: 120_000 });
      expect(r.stderr).toBe('');
      expect(r.status).toBe(0);
      for (const [, out] of code.matchAll(/writeFile\('([^']+)'/g)) expect(existsSync(join(dir, out)), out).toBe(true);
    });
  });
});
