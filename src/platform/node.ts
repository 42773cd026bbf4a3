// The Node, Deno and Bun side of '#platform' (package.json "imports", conditions node/deno/bun): every
// `node:` module the library uses is reached through this file, so the web side (web.ts) can stand in for
// it in browser and edge bundles and no `node:` import is reachable from there.
//
// Each module is imported on first use, not at the top: importing this file costs nothing.
import { DdpmError } from '../errors.js';

export const PLATFORM = 'node' as const;

export function fsPromises(): Promise<typeof import('node:fs/promises')> {
  return import('node:fs/promises');
}

export function pathModule(): Promise<typeof import('node:path')> {
  return import('node:path');
}

export function workerThreads(): Promise<typeof import('node:worker_threads')> {
  return import('node:worker_threads');
}

export function osModule(): Promise<typeof import('node:os')> {
  return import('node:os');
}

export function v8Module(): Promise<typeof import('node:v8')> {
  return import('node:v8');
}

/** A file: URL as a path (folders and shipped models are read from disk here). */
export async function fileUrlToPath(url: URL): Promise<string> {
  const { fileURLToPath } = await import('node:url');
  return fileURLToPath(url);
}

/**
 * The bytes of a regular file, or null when it does not exist; any other failure is an IO error naming it.
 * Opened non-blocking and checked through its handle: a FIFO in place of a weights file used to hang in
 * open() forever, a device would be read without end; both (and a directory) are IO errors at once.
 */
export async function readFileOrNull(path: string): Promise<Uint8Array | null> {
  const fs = await fsPromises();
  const { constants } = await import('node:fs');
  let fh: Awaited<ReturnType<typeof fs.open>>;
  try {
    fh = await fs.open(path, constants.O_RDONLY | (constants.O_NONBLOCK ?? 0));
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return null;
    throw new DdpmError('IO', `${path}: cannot read (${code ?? (e as Error).message})`, { cause: e });
  }
  try {
    const st = await fh.stat();
    if (!st.isFile()) {
      const kind = st.isDirectory()
        ? 'a directory'
        : st.isFIFO()
          ? 'a FIFO (named pipe)'
          : st.isCharacterDevice()
            ? 'a character device'
            : 'not a regular file';
      throw new DdpmError('IO', `${path}: ${kind} where a regular file is expected`);
    }
    return new Uint8Array(await fh.readFile());
  } catch (e) {
    if (e instanceof DdpmError) throw e;
    throw new DdpmError('IO', `${path}: cannot read (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`, {
      cause: e,
    });
  } finally {
    await fh.close().catch(() => {});
  }
}

/** Writes files into `dir` (created if needed), each under a temporary name renamed into place. */
export async function writeFilesAtomic(dir: string, files: [string, Uint8Array | string][]): Promise<void> {
  const fs = await fsPromises();
  const { join } = await pathModule();
  try {
    await fs.mkdir(dir, { recursive: true });
    for (const [name, data] of files) {
      const tmp = join(dir, `.${name}.tmp`);
      await fs.writeFile(tmp, data);
      await fs.rename(tmp, join(dir, name));
    }
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    // what happened, in words (the errno stays in the message and as `cause`)
    const why =
      code === 'ENOSPC'
        ? 'disk full'
        : code === 'EROFS'
          ? 'the file system is read-only'
          : code === 'EACCES' || code === 'EPERM'
            ? 'permission denied (read-only folder?)'
            : code === 'ENOTDIR'
              ? 'a parent of it is a file, not a folder'
              : 'error';
    throw new DdpmError('IO', `${dir}: cannot write: ${why} (${code ?? (e as Error).message})`, { cause: e });
  }
}
