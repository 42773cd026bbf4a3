// The browser and edge side of '#platform' (package.json "imports", the default condition): the same
// functions as node.ts, with no `node:` import anywhere, so bundlers need no configuration. Files and
// folders do not exist here: what needs them throws UNSUPPORTED naming the fix (bytes, a URL, or a runtime
// with a file system).
import { DdpmError } from '../errors.js';

export const PLATFORM = 'web' as const;

function unsupported(what: string): never {
  throw new DdpmError(
    'UNSUPPORTED',
    `${what} needs Node, Deno or Bun (a file system); in browsers and edge workers pass bytes or a URL instead`,
  );
}

function noModule(name: string): never {
  throw new DdpmError(
    'UNSUPPORTED',
    `${name} is not available in the web build of ddpm-wasm (Node, Deno and Bun get the node build through the package's export conditions)`,
  );
}

export async function fsPromises(): Promise<typeof import('node:fs/promises')> {
  return unsupported('reading and writing files');
}

export async function pathModule(): Promise<typeof import('node:path')> {
  return unsupported('file paths');
}

export async function workerThreads(): Promise<typeof import('node:worker_threads')> {
  return noModule('node:worker_threads');
}

export async function osModule(): Promise<typeof import('node:os')> {
  return noModule('node:os');
}

export async function v8Module(): Promise<typeof import('node:v8')> {
  return noModule('node:v8');
}

export async function fileUrlToPath(url: URL): Promise<string> {
  return unsupported(`the file URL ${url.href}`);
}

export async function readFileOrNull(path: string): Promise<Uint8Array | null> {
  return unsupported(`the folder path ${path}`);
}

export async function writeFilesAtomic(dir: string, _files: [string, Uint8Array | string][]): Promise<void> {
  return unsupported(`writing ${dir}`);
}
