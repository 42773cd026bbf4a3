// `node vite-build.mjs <root>`: builds the Vite app at <root> with no config file (what `vite build` does
// there) and prints one JSON line: every warning Vite logged. A child process, so the build sees a
// plain Node environment rather than the test runner's.
import { build, createLogger } from 'vite';

const warnings = [];
const logger = createLogger('warn');
const collect = (msg) => warnings.push(msg);
await build({
  root: process.argv[2],
  configFile: false,
  logLevel: 'warn',
  customLogger: { ...logger, warn: collect, warnOnce: collect, error: collect },
});
console.log(JSON.stringify({ warnings }));
