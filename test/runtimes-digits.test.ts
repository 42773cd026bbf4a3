// The shipped model (models/mnist) samples the same 4 digits in Node, Deno and Bun, bit for bit, with 1
// and 2 threads: test/runtimes/digits-node.mjs reads the folder and prints x_0's SHA-256. Bun's
// JavaScriptCore does not fuse relaxed_madd, so its relaxed build gives the plain build's bits.
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

const root = join(__dirname, '..');
const script = join(root, 'test/runtimes/digits-node.mjs');
const bin = (name: string) => join(root, 'node_modules/.bin', name);
const runtimes: Record<string, string[]> = {
  node: [process.execPath, script],
  deno: [bin('deno'), 'run', '--allow-read', script],
  bun: [bin('bun'), script],
};
interface Digits { runtime: string; build: string; threads: number; fusedMadd: boolean | null; sha256: string }
function run(name: string, simd: string, threads: number): Digits {
  const [cmd, ...args] = runtimes[name];
  const out = execFileSync(cmd, [...args, simd, String(threads)], { cwd: root, encoding: 'utf8', timeout: 60_000, env: { ...process.env, NO_COLOR: '1' } });
  return JSON.parse(out.trim().split('\n').pop()!);
}

describe('the shipped model in Node, Deno and Bun', () => {
  const reference = { simd: run('node', 'simd', 1), relaxed: run('node', 'relaxed', 1) };
  it('Node: the relaxed build differs from the plain one in the last bits (V8 fuses relaxed_madd)', () => {
    expect(reference.relaxed.fusedMadd).toBe(true);
    expect(reference.relaxed.sha256).not.toBe(reference.simd.sha256);
  });
  for (const name of Object.keys(runtimes)) {
    it(`${name}: both builds, 1 and 2 threads, Node's bits`, () => {
      const cases = [['simd', 1], ['simd', 2], ['relaxed', 2]] as const;
      for (const [simd, threads] of cases) {
        {
          const got = run(name, simd, threads);
          expect(got).toMatchObject({ runtime: name, threads, build: threads > 1 ? `${simd}-mt` : simd });
          const want = simd === 'relaxed' && !got.fusedMadd ? 'simd' : simd;
          expect(got.sha256, `${name} ${simd} ${threads}`).toBe(reference[want].sha256);
        }
      }
    });
  }
});
