// The demo's static server: `npm run demo` (or `node examples/browser/server.mjs [--port 8080]
// [--no-isolation]`), then open the address it prints. It serves the repository (the model from
// /models/mnist/) on 127.0.0.1 only, with the two headers that make a page cross-origin isolated —
// Cross-Origin-Opener-Policy: same-origin and Cross-Origin-Embedder-Policy: require-corp — so
// SharedArrayBuffer exists and the engine's Worker can run threads. With --no-isolation the page still
// works, single-threaded.
//
// The page's worker imports the library from /dist/web/ (`ddpm-wasm/web`: plain ES modules with no bare
// imports, which a browser loads without a bundler or an import map — a Worker takes none).
import { createReadStream, existsSync, statSync } from 'node:fs';
import { createServer } from 'node:http';
import { extname, join, normalize, sep } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('../../', import.meta.url));
const TYPES = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json; charset=utf-8',
  '.wasm': 'application/wasm',
  '.png': 'image/png',
  '.map': 'application/json',
  '.safetensors': 'application/octet-stream',
  '.md': 'text/plain; charset=utf-8',
};

/** Starts the server; resolves to { url, close() }. port 0 picks a free one; `dir` defaults to the repository. */
export function serve({ port = 8080, host = '127.0.0.1', isolated = true, dir = root } = {}) {
  const server = createServer((req, res) => {
    const headers = isolated
      ? { 'Cross-Origin-Opener-Policy': 'same-origin', 'Cross-Origin-Embedder-Policy': 'require-corp' }
      : {};
    const path = decodeURIComponent(new URL(req.url ?? '/', 'http://x').pathname);
    if (path === '/' && dir === root) {
      res.writeHead(302, { ...headers, Location: '/examples/browser/' }).end();
      return;
    }
    let file = normalize(join(dir, path));
    if (file !== dir && !file.startsWith(dir.endsWith(sep) ? dir : dir + sep)) {
      res.writeHead(403, headers).end('forbidden');
      return;
    }
    if (existsSync(file) && statSync(file).isDirectory()) file = join(file, 'index.html');
    if (!existsSync(file) || !statSync(file).isFile()) {
      res.writeHead(404, { ...headers, 'Content-Type': 'text/plain' }).end(`not found: ${path}`);
      return;
    }
    res.writeHead(200, {
      ...headers,
      'Content-Type': TYPES[extname(file)] ?? 'application/octet-stream',
      'Cache-Control': 'no-cache',
    });
    createReadStream(file).pipe(res);
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      const { port: p } = server.address();
      resolve({ url: `http://${host}:${p}/`, close: () => new Promise((r) => server.close(() => r())), server });
    });
  });
}

if (process.argv[1] && fileURLToPath(import.meta.url) === normalize(process.argv[1])) {
  const args = process.argv.slice(2);
  const at = args.indexOf('--port');
  const port = at >= 0 ? Number(args[at + 1]) : 8080;
  const isolated = !args.includes('--no-isolation');
  if (!existsSync(join(root, 'dist/web/index.js'))) {
    console.error('dist/ is missing: run `npm run build` first (npm ci does it too)');
    process.exit(1);
  }
  const { url } = await serve({ port, isolated });
  console.log(
    `ddpm-wasm demo: ${url}  (${isolated ? 'cross-origin isolated: threads available' : 'not isolated: one thread'}; Ctrl-C stops)`,
  );
}
