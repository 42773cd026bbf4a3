// The package's name and version for `ddpm --version`, read from package.json at run time: two levels up
// from this file both as src/cli/version.ts and as the built dist/cli/version.js.
import { readFileSync } from 'node:fs';

export function packageVersion(): { name: string; version: string } {
  const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as {
    name: string;
    version: string;
  };
  return { name: pkg.name, version: pkg.version };
}
