// Runs a bundled worker (see wrangler-build.mjs) in workerd, the open-source Cloudflare Workers runtime
// from npm (its binary ships in @cloudflare/workerd-linux-64), on 127.0.0.1. Resolves to { url, close() }
// once the socket answers.
import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { createServer } from 'node:net';
import { join } from 'node:path';

// The binary itself, not node_modules/.bin/workerd: that is a Node script whose child outlives a kill.
const WORKERD = createRequire(import.meta.url)('workerd').default;

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

export async function startWorkerd(dir, { main, modules, compatibilityDate }, { timeoutMs = 45_000 } = {}) {
  const port = await freePort();
  const mods = [
    `(name = "${main}", esModule = embed "${main}")`,
    ...modules.map((m) => `(name = "${m.name}", ${m.type} = embed "${m.name}")`),
  ];
  writeFileSync(
    join(dir, 'config.capnp'),
    `using Workerd = import "/workerd/workerd.capnp";
const config :Workerd.Config = (
  services = [(name = "main", worker = .worker)],
  sockets = [(name = "http", address = "127.0.0.1:${port}", http = (), service = "main")],
);
const worker :Workerd.Worker = (
  modules = [${mods.join(', ')}],
  compatibilityDate = "${compatibilityDate}",
);
`,
  );
  const proc = spawn(WORKERD, ['serve', join(dir, 'config.capnp')], { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });
  // workerd drains on SIGTERM; a test server has nothing to drain. Never outlive the test process.
  const kill = () => proc.exitCode === null && proc.signalCode === null && proc.kill('SIGKILL');
  process.once('exit', kill);
  let log = '';
  proc.stdout.on('data', (d) => (log += d));
  proc.stderr.on('data', (d) => (log += d));
  const url = `http://127.0.0.1:${port}/`;
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (proc.exitCode !== null || proc.signalCode !== null)
      throw new Error(`workerd exited (${proc.exitCode ?? proc.signalCode}):\n${log}`);
    try {
      await fetch(url + '__ready');
      break;
    } catch {
      if (Date.now() > deadline) {
        kill();
        throw new Error(`workerd did not answer on ${url} within ${timeoutMs} ms:\n${log}`);
      }
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  return {
    url,
    log: () => log,
    close: () =>
      new Promise((resolve) => {
        process.off('exit', kill);
        if (proc.exitCode !== null || proc.signalCode !== null) return resolve();
        proc.once('exit', () => resolve());
        kill();
      }),
  };
}
