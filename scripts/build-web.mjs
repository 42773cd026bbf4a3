// dist/web/: the library as plain ES modules that need no bundler, no import map and no node_modules —
// for a page or Worker that imports it straight from a server (the demo page), Deno importing by URL,
// or a CDN. dist/ itself imports 'fflate' and '#platform' (package.json "imports"), which only a
// bundler or a package-aware runtime resolves; here esbuild resolves them for the browser conditions
// ('#platform' → platform/web.js). Code splitting keeps each Wasm build its own chunk, imported on
// demand, as in dist/. Run after tsc (npm run build:ts does).
import { build } from 'esbuild';

await build({
  entryPoints: { index: 'dist/index.js' },
  outdir: 'dist/web',
  bundle: true,
  splitting: true,
  format: 'esm',
  platform: 'browser',
  target: 'es2022',
  sourcemap: true,
  logLevel: 'warning',
  // no `process.env.NODE_ENV` games: the library reads none
});
