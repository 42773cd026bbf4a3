// Runs a bundled worker (see wrangler-build.mjs) in workerd, the open-source Cloudflare Workers runtime
// from npm (its binary ships in @cloudflare/workerd-linux-64), on 127.0.0.1. Resolves to { url, close() }
// once the socket answers.
import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const WORKERD = fileURLToPath(new URL('../../node_modules/.bin/workerd', import.meta.url));

function freePort() {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

export async function startWorkerd(dir, { main, modules, compatibilityDate }, { timeoutMs = 20_000 } = {}) {
  const port = await freePort();
  const mods = [`(name = "${main}", esModule = embed "${main}")`, ...modules.map((m) => `(name = "${m.name}", ${m.type} = embed "${m.name}")`)];
  writeFileSync(join(dir, 'config.capnp'), `using Workerd = import "/workerd/workerd.capnp";
const config :Workerd.Config = (
  services = [(name = "main", worker = .worker)],
  sockets = [(name = "http", address = "127.0.0.1:${port}", http = (), service = "main")],
);
const worker :Workerd.Worker = (
  modules = [${mods.join(', ')}],
  compatibilityDate = "${compatibilityDate}",
);
`);
  const proc = spawn(WORKERD, ['serve', join(dir, 'config.capnp')], { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });
  let log = '';
  proc.stdout.on('data', (d) => (log += d));
  proc.stderr.on('data', (d) => (log += d));
  const url = `http://127.0.0.1:${port}/`;
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (proc.exitCode !== null) throw new Error(`workerd exited with code ${proc.exitCode}:\n${log}`);
    try {
      await fetch(url + '__ready');
      break;
    } catch {
      if (Date.now() > deadline) {
        proc.kill();
        throw new Error(`workerd did not answer on ${url} within ${timeoutMs} ms:\n${log}`);
      }
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  return {
    url,
    log: () => log,
    close: () => new Promise((resolve) => {
      if (proc.exitCode !== null) return resolve();
      proc.once('exit', () => resolve());
      proc.kill();
    }),
  };
}
