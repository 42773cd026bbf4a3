// The same kernels under Node, Deno and Bun, through the built package (dist/), with 1–3 threads: the
// engine must start its workers in each runtime, pick the threaded build, and give identical bits.
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

const root = join(__dirname, '..');
const script = join(root, 'test/runtimes/smoke.mjs');
const bin = (name: string) => join(root, 'node_modules/.bin', name);

const runtimes: Record<string, (threads: number) => string[]> = {
  node: (t) => [process.execPath, script, String(t)],
  deno: (t) => [bin('deno'), 'run', '--allow-read', script, String(t)],
  bun: (t) => [bin('bun'), script, String(t)],
};

interface Result {
  build: string;
  threads: number;
  runtime: string;
  fusedMadd: boolean | null;
  bits: Record<'axpy' | 'gemm' | 'conv' | 'randn', number[]>;
}

function run(cmd: string[]): Record<string, Result> {
  const out = execFileSync(cmd[0], cmd.slice(1), {
    cwd: root,
    encoding: 'utf8',
    timeout: 60_000,
    env: { ...process.env, NO_COLOR: '1' },
  });
  return JSON.parse(out.trim().split('\n').pop()!);
}

describe('runtimes', () => {
  it('dist/ is built (npm test builds it)', () => {
    expect(existsSync(join(root, 'dist/index.js'))).toBe(true);
  });

  const reference = run(runtimes.node(1));
  it('V8 fuses relaxed_madd, so the two builds differ in the last bits (documented)', () => {
    expect(reference.relaxed.fusedMadd).toBe(true);
    expect(reference.relaxed.bits.gemm).not.toEqual(reference.simd.bits.gemm);
    expect(reference.relaxed.bits.randn).toEqual(reference.simd.bits.randn); // no multiply-add in Philox/Box–Muller's f64 path
  });

  it("a Node process that never calls dispose() still exits (workers are unref'd)", () => {
    const code = `import('${join(root, 'dist/index.js')}').then(async ({ Engine }) => { await Engine.create({ threads: 3 }); console.log('created'); })`;
    const out = execFileSync(process.execPath, ['--input-type=module', '-e', code], {
      encoding: 'utf8',
      timeout: 20_000,
    });
    expect(out.trim()).toBe('created');
  });
  for (const [name, cmd] of Object.entries(runtimes)) {
    for (const threads of [1, 2, 3]) {
      it(`${name} with ${threads} thread(s) starts, picks the right build and matches Node's 1-thread bits`, () => {
        const got = run(cmd(threads));
        for (const simd of ['simd', 'relaxed']) {
          expect(got[simd].runtime).toBe(name);
          expect(got[simd].threads).toBe(threads);
          expect(got[simd].build).toBe(threads > 1 ? `${simd}-mt` : simd);
          // A runtime that does not fuse relaxed_madd (Bun's JavaScriptCore) computes the relaxed build's
          // a·b + c as mul then add: the plain build's bits.
          const want = simd === 'relaxed' && !got.relaxed.fusedMadd ? 'simd' : simd;
          for (const k of ['axpy', 'gemm', 'conv', 'randn'] as const)
            expect(got[simd].bits[k], k).toEqual(reference[want].bits[k]);
        }
      });
    }
  }
});
