// Runs a Vercel Edge Function in Vercel's edge-runtime (npm), with code generation from strings and
// from Wasm bytes disabled as on Vercel. It is bundled with esbuild (conditions edge-light, worker,
// browser) the way Vercel's bundler treats `import wasm from '….wasm?module'`: the file is compiled
// outside the sandbox and handed in as a global binding, a WebAssembly.Module of the host's realm.
import { readFileSync } from 'node:fs';
import { setFlagsFromString } from 'node:v8';
import { build } from 'esbuild';
import { EdgeRuntime } from 'edge-runtime';

export async function loadEdgeFunction(entry, { external = [] } = {}) {
  // Node 20's V8 compiles relaxed SIMD only behind this flag (Node 22, which Vercel runs, has it on).
  setFlagsFromString('--experimental-wasm-relaxed-simd');
  const wasm = {};
  const wasmModulePlugin = {
    name: 'vercel-wasm-module',
    setup(b) {
      b.onResolve({ filter: /\.wasm\?module$/ }, async (args) => {
        const r = await b.resolve(args.path.slice(0, -'?module'.length), {
          kind: args.kind,
          resolveDir: args.resolveDir,
          importer: args.importer,
        });
        if (r.errors.length) return { errors: r.errors };
        const name = `wasm_${Object.keys(wasm).length}`;
        wasm[name] = new WebAssembly.Module(readFileSync(r.path));
        return { path: name, namespace: 'vercel-wasm' };
      });
      b.onLoad({ filter: /.*/, namespace: 'vercel-wasm' }, (args) => ({
        contents: `export default globalThis.${args.path};`,
        loader: 'js',
      }));
    },
  };
  const out = await build({
    entryPoints: [entry],
    bundle: true,
    write: false,
    format: 'iife',
    globalName: '__edgeFunction',
    platform: 'neutral',
    conditions: ['edge-light', 'worker', 'browser'],
    mainFields: ['module', 'main'],
    target: 'es2022',
    external,
    plugins: [wasmModulePlugin],
    logLevel: 'silent',
    footer: { js: "addEventListener('fetch', (event) => event.respondWith(__edgeFunction.default(event.request)));" },
  });
  const runtime = new EdgeRuntime({
    codeGeneration: { strings: false, wasm: false },
    extend: (context) => Object.assign(context, wasm),
  });
  runtime.evaluate(out.outputFiles[0].text);
  return runtime;
}
