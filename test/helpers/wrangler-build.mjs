// Bundles a Cloudflare Worker as wrangler does, for test/runtimes-edge.test.ts (wrangler itself needs a
// newer Node than CI's): esbuild with the workerd/worker/browser conditions, and the wrangler.toml
// [[rules]] applied — an import that a rule matches (CompiledWasm, Data, Text) is not bundled but becomes
// a module of its own beside the bundle, which workerd then loads as that type.
import { copyFileSync, mkdirSync, readFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { build } from 'esbuild';
import picomatch from 'picomatch';
import { parse } from 'smol-toml';

const MODULE_TYPES = { CompiledWasm: 'wasm', Data: 'data', Text: 'text' };

/** Returns { main: 'worker.js', modules: [{ name, type }] } with the files in outdir. */
export async function bundleWorker(projectDir, outdir, { external = [] } = {}) {
  const cfg = parse(readFileSync(join(projectDir, 'wrangler.toml'), 'utf8'));
  const rules = (cfg.rules ?? []).map((r) => ({
    type: r.type,
    match: picomatch(r.globs, { dot: true, basename: false, contains: true }),
  }));
  mkdirSync(outdir, { recursive: true });
  const modules = [];
  const rulesPlugin = {
    name: 'wrangler-rules',
    setup(b) {
      b.onResolve({ filter: /.*/ }, async (args) => {
        if (args.pluginData?.inner || args.kind === 'entry-point') return undefined;
        const r = await b.resolve(args.path, {
          kind: args.kind,
          resolveDir: args.resolveDir,
          importer: args.importer,
          pluginData: { inner: true },
        });
        if (r.errors.length || r.external) return undefined; // esbuild reports it
        const rule = rules.find((x) => x.match(r.path));
        if (!rule) return undefined;
        const type = MODULE_TYPES[rule.type];
        if (!type) throw new Error(`wrangler rule type ${rule.type} is not handled by this test helper`);
        const name = `${modules.length}-${basename(r.path)}`;
        copyFileSync(r.path, join(outdir, name));
        modules.push({ name, type });
        return { path: `./${name}`, external: true };
      });
    },
  };
  const result = await build({
    entryPoints: [join(projectDir, cfg.main)],
    outfile: join(outdir, 'worker.js'),
    bundle: true,
    format: 'esm',
    platform: 'neutral',
    conditions: ['workerd', 'worker', 'browser'],
    mainFields: ['module', 'main'],
    target: 'es2022',
    external,
    plugins: [rulesPlugin],
    logLevel: 'silent',
    metafile: true,
  });
  return { main: 'worker.js', modules, compatibilityDate: cfg.compatibility_date, metafile: result.metafile };
}
