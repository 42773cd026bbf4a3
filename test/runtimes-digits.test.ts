// The shipped model samples the same 4 digits in Node, Deno and Bun, bit for bit, with 1 and 2 threads:
// through the pipeline by name (test/runtimes/digits-pipeline.mjs, `DDPMPipeline.fromPretrained(engine,
// 'mnist')`, as a user writes it), compared with Node's hand-written loop over the model folder
// (test/runtimes/digits-node.mjs: UNet2DModel + DDIMScheduler + SamplingChain). Bun's JavaScriptCore does
// not fuse relaxed_madd, so its relaxed build gives the plain build's bits.
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

const root = join(__dirname, '..');
const pipeline = join(root, 'test/runtimes/digits-pipeline.mjs');
const bin = (name: string) => join(root, 'node_modules/.bin', name);
const runtimes: Record<string, string[]> = {
  node: [process.execPath, pipeline],
  deno: [bin('deno'), 'run', '--allow-read', pipeline],
  bun: [bin('bun'), pipeline],
};
interface Digits {
  runtime: string;
  build: string;
  threads: number;
  fusedMadd: boolean | null;
  sha256: string;
  sha256Guided?: string;
  sha256Alone?: string;
  png?: number[];
}
function run(cmd: string[], simd: string, threads: number): Digits {
  const out = execFileSync(cmd[0], [...cmd.slice(1), simd, String(threads)], {
    cwd: root,
    encoding: 'utf8',
    timeout: 60_000,
    env: { ...process.env, NO_COLOR: '1' },
  });
  return JSON.parse(out.trim().split('\n').pop()!);
}

describe('the shipped model in Node, Deno and Bun', () => {
  const loop = [process.execPath, join(root, 'test/runtimes/digits-node.mjs')];
  const reference = { simd: run(loop, 'simd', 1), relaxed: run(loop, 'relaxed', 1) };
  it('Node: the relaxed build differs from the plain one in the last bits (V8 fuses relaxed_madd)', () => {
    expect(reference.relaxed.fusedMadd).toBe(true);
    expect(reference.relaxed.sha256).not.toBe(reference.simd.sha256);
    expect(reference.simd.sha256Guided).not.toBe(reference.simd.sha256);
  });
  for (const [name, cmd] of Object.entries(runtimes)) {
    it(`${name}: the pipeline, both builds, 1 and 2 threads: the loop's bits, and a PNG`, () => {
      for (const [simd, threads] of [
        ['simd', 1],
        ['simd', 2],
        ['relaxed', 2],
      ] as const) {
        const got = run(cmd, simd, threads);
        expect(got).toMatchObject({ runtime: name, threads, build: threads > 1 ? `${simd}-mt` : simd });
        const want = simd === 'relaxed' && !got.fusedMadd ? 'simd' : simd;
        // by default the pipeline applies the model's autoguidance: the loop's hand-combined bits
        expect(got.sha256, `${name} ${simd} ${threads}`).toBe(reference[want].sha256Guided);
        expect(got.sha256Alone, `${name} ${simd} ${threads} alone`).toBe(reference[want].sha256);
        expect(got.png).toEqual([137, 80, 78, 71, 13, 10, 26, 10]);
      }
    });
  }
});
