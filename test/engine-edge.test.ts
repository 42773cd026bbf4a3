// Engine.create for edge runtimes: a module handed in is read (its build_id), never second-guessed, and
// nothing is compiled at run time then; where compiling is forbidden and no module is given, or threads
// are asked for where no Worker exists, the error names the fix. The forbidden-compile and no-Worker
// runtimes are simulated in child processes (test/runtimes/edge-sim.mjs); the real ones are in
// test/runtimes-edge.test.ts.
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { setFlagsFromString } from 'node:v8';
import { describe, expect, it } from 'vitest';
import { DdpmError, Engine } from '../src/index.js';
import { relaxedMaddIsFused } from '../src/engine/runtime.js';

setFlagsFromString('--experimental-wasm-relaxed-simd'); // Node 20 (the engine sets it the same way)

const root = join(__dirname, '..');
const builds = ['simd', 'relaxed', 'simd-mt', 'relaxed-mt'] as const;
const module = (b: string) => new WebAssembly.Module(readFileSync(join(root, 'build/wasm', `${b}.wasm`)));

function child(
  mode: string,
): Record<
  string,
  { ok: boolean; code?: string; message?: string; info?: Engine['info']; result?: number[]; compileAttempts: number }
> {
  const out = execFileSync(process.execPath, [join(root, 'test/runtimes/edge-sim.mjs'), mode], {
    encoding: 'utf8',
    timeout: 30_000,
  });
  return JSON.parse(out.trim().split('\n').pop()!);
}

describe('build ids', () => {
  it('each build says which it is after instantiation (build_id: bit 0 relaxed, bit 1 threads)', async () => {
    for (const [i, b] of builds.entries()) {
      const shared = b.endsWith('-mt');
      const memory = new WebAssembly.Memory({ initial: 1, maximum: 1, shared } as WebAssembly.MemoryDescriptor);
      const { exports } = await WebAssembly.instantiate(module(b), { env: { memory } });
      expect((exports.build_id as () => number)(), b).toBe([0, 1, 2, 3][i]);
    }
  });

  it("a module's build decides for 'auto', and is reported with its relaxed_madd fusing", async () => {
    for (const b of builds) {
      const e = await Engine.create({ wasm: module(b), threads: b.endsWith('-mt') ? 2 : 1 });
      expect(e.info.build).toBe(b);
      // read from the module's madd_probe; must agree with the compiled probe module
      expect(e.info.fusedMadd).toBe(b.startsWith('relaxed') ? relaxedMaddIsFused() : null);
      e.dispose();
    }
  });

  it('a module of the wrong build is a DdpmError naming the build found and the one needed', async () => {
    const cases: [Parameters<typeof Engine.create>[0], RegExp][] = [
      [
        { wasm: module('relaxed'), simd: 'simd', threads: 1 },
        /options\.wasm is the relaxed build, but simd: 'simd' was asked for: pass the simd build \(wasm\/simd\.wasm\)/,
      ],
      [
        { wasm: module('simd'), simd: 'relaxed', threads: 1 },
        /options\.wasm is the simd build, but simd: 'relaxed'.*wasm\/relaxed\.wasm/,
      ],
      [
        { wasm: module('simd'), threads: 3 },
        /options\.wasm is the simd build \(single-threaded\); threads: 3 needs the simd-mt build \(wasm\/simd-mt\.wasm\)/,
      ],
      [
        { wasm: module('relaxed'), threads: 2 },
        /relaxed build \(single-threaded\); threads: 2 needs the relaxed-mt build/,
      ],
      [
        { wasm: module('relaxed-mt'), simd: 'simd', threads: 2 },
        /relaxed-mt build, but simd: 'simd'.*wasm\/simd-mt\.wasm/,
      ],
    ];
    for (const [opts, msg] of cases) {
      const err = await Engine.create(opts).catch((x) => x);
      expect(err, String(msg)).toBeInstanceOf(DdpmError);
      expect(err.code).toBe('UNSUPPORTED');
      expect(err.message).toMatch(msg);
    }
  });

  it("threads 'auto' with a single-threaded module runs 1 thread and says why", async () => {
    const e = await Engine.create({ wasm: module('simd') });
    expect(e.info.threads).toBe(1);
    expect(e.info.why.join('\n')).toContain('1 thread: the module in options.wasm is the single-threaded simd build');
    e.dispose();
  });

  it('a threaded module also runs on 1 thread (over a shared memory)', async () => {
    const e = await Engine.create({ wasm: module('simd-mt'), threads: 1 });
    expect([e.info.build, e.info.threads]).toEqual(['simd-mt', 1]);
    expect(e.memory.buffer).toBeInstanceOf(SharedArrayBuffer);
    e.dispose();
  });
});

describe('where compiling Wasm at run time is forbidden (simulated)', () => {
  const r = child('nocompile');
  it('Engine.create() without a module is a DdpmError that says to import the .wasm and pass it', () => {
    expect(r['no wasm']).toMatchObject({ ok: false, code: 'UNSUPPORTED' });
    expect(r['no wasm'].message).toMatch(
      /does not compile WebAssembly at run time \(CompileError: .*disallowed by embedder\)/,
    );
    expect(r['no wasm'].message).toContain("import wasm from 'ddpm-wasm/wasm/simd.wasm'");
    expect(r['no wasm'].message).toContain('Engine.create({ wasm })');
    expect(r.bytes).toMatchObject({ ok: false, code: 'UNSUPPORTED' });
    expect(r.bytes.message).toMatch(/^options\.wasm: .*bytes or a URL cannot be used.*import wasm from/);
  });
  it('a module handed in runs with no compile attempted at all — relaxed fusing included', () => {
    for (const k of ['relaxed module', 'simd module', 'simd-mt module, 2 threads']) {
      expect(r[k].ok, k).toBe(true);
      expect(r[k].compileAttempts, k).toBe(0);
      expect(r[k].result).toEqual([3, 6, 9, 12]);
    }
    expect(r['relaxed module'].info!.fusedMadd).toBe(relaxedMaddIsFused());
    expect(r['simd-mt module, 2 threads'].info!.threads).toBe(2);
  });
});

describe('where no Worker exists (simulated workerd)', () => {
  const r = child('noworker');
  it('threads > 1 is a DdpmError; threads auto quietly runs 1 thread with the reason in info.why', () => {
    expect(r['threads 2']).toMatchObject({ ok: false, code: 'UNSUPPORTED' });
    expect(r['threads 2'].message).toBe(
      "threads: 2 needs worker threads, but this runtime has no Worker (workerd); use threads: 1 or 'auto'",
    );
    expect(r['threads auto'].ok).toBe(true);
    expect(r['threads auto'].info!.runtime).toBe('workerd');
    expect(r['threads auto'].info!.threads).toBe(1);
    expect(r['threads auto'].info!.why).toContain('1 thread: this runtime has no Worker');
  });
  it('a Worker without URL.createObjectURL (the workers start from a Blob URL) is no better', () => {
    const b = child('noblob');
    expect(b['threads 2']).toMatchObject({ ok: false, code: 'UNSUPPORTED' });
    expect(b['threads 2'].message).toBe(
      "threads: 2 needs worker threads, but this runtime has no URL.createObjectURL, which starting a Worker from a Blob URL needs (workerd); use threads: 1 or 'auto'",
    );
  });
});
