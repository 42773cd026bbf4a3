// Filesystem access for the Node-side readers and writers (Node, Deno, Bun), with two guarantees:
// - Only regular files are read. The file is opened non-blocking and checked through its own handle
//   (fstat, no race with a stat of the path): a FIFO in place of a weights file used to hang the process
//   forever in open(); a device (/dev/zero) would be read without end; a directory gave EISDIR only after
//   other work. Each is an IO error at once, naming the file.
// - Errors say which file and what happened: "disk full writing X", "read-only", "a parent of X is a
//   file", not Node's bare "ENOSPC: no space left on device, write". Code 'IO', the errno as `cause`.
import { DdpmError } from '../errors.js';
import { formatBytes } from '../engine/memory.js';

type Errno = NodeJS.ErrnoException;

/** What a filesystem error code means, in words (for `doing` a file: "reading", "writing" …). */
function explain(code: string | undefined, doing: string, path: string): string {
  switch (code) {
    case 'ENOENT':
      return `${path}: cannot ${doing === 'reading' ? 'read' : 'write'} (no such file or folder)`;
    case 'ENOSPC':
      return `disk full ${doing} ${path} (ENOSPC)`;
    case 'EDQUOT':
      return `disk quota exceeded ${doing} ${path} (EDQUOT)`;
    case 'EROFS':
      return `${path}: cannot ${doing === 'reading' ? 'read' : 'write'}: the file system is read-only (EROFS)`;
    case 'EACCES':
    case 'EPERM':
      return `${path}: cannot ${doing === 'reading' ? 'read' : 'write'}: permission denied${doing === 'reading' ? '' : ' (read-only file or folder)'} (${code})`;
    case 'ENOTDIR':
      return `${path}: cannot ${doing === 'reading' ? 'read' : 'write'}: a parent of it is a file, not a folder (ENOTDIR)`;
    case 'EISDIR':
      return `${path}: cannot ${doing === 'reading' ? 'read' : 'write'}: it is a folder, not a file (EISDIR)`;
    case 'EMFILE':
    case 'ENFILE':
      return `${path}: cannot open: too many open files (${code})`;
    case 'ENAMETOOLONG':
      return `${path}: the name is too long (ENAMETOOLONG)`;
    case 'ELOOP':
      return `${path}: too many symbolic links (ELOOP)`;
    default:
      return `${path}: cannot ${doing === 'reading' ? 'read' : 'write'} (${code ?? 'error'})`;
  }
}

/** A DdpmError('IO') for a failed filesystem call on `path`; DdpmErrors pass through unchanged. */
export function fsError(e: unknown, path: string, doing: 'reading' | 'writing'): DdpmError {
  if (e instanceof DdpmError) return e;
  const err = e as Errno;
  const detail = err?.code ? '' : `: ${String(err?.message ?? e)}`;
  return new DdpmError('IO', explain(err?.code, doing, path) + detail, { cause: e });
}

/** What a stat describes, for messages: "a FIFO", "a directory" … */
function kindOf(st: {
  isDirectory(): boolean;
  isFIFO(): boolean;
  isCharacterDevice(): boolean;
  isBlockDevice(): boolean;
  isSocket(): boolean;
}): string {
  if (st.isDirectory()) return 'a directory';
  if (st.isFIFO()) return 'a FIFO (named pipe)';
  if (st.isCharacterDevice()) return 'a character device';
  if (st.isBlockDevice()) return 'a block device';
  if (st.isSocket()) return 'a socket';
  return 'not a regular file';
}

/** Default cap on a file read whole: 4 GiB, wasm32's ceiling (nothing larger can be loaded anyway). */
export const MAX_READ_BYTES = 2 ** 32;

/**
 * Reads a regular file whole. A FIFO, device, socket or directory is an IO error at once; a file larger
 * than `maxBytes` is refused (FORMAT) before anything is read.
 */
export async function readRegularFile(path: string, o: { maxBytes?: number } = {}): Promise<Uint8Array> {
  const fs = await import('node:fs/promises');
  const { constants } = await import('node:fs');
  const maxBytes = o.maxBytes ?? MAX_READ_BYTES;
  let fh: Awaited<ReturnType<typeof fs.open>>;
  try {
    // O_NONBLOCK: opening a FIFO for reading would otherwise wait for a writer, forever
    fh = await fs.open(path, constants.O_RDONLY | (constants.O_NONBLOCK ?? 0));
  } catch (e) {
    throw fsError(e, path, 'reading');
  }
  try {
    const st = await fh.stat();
    if (!st.isFile()) throw new DdpmError('IO', `${path}: ${kindOf(st)} where a regular file is expected`);
    if (st.size > maxBytes)
      throw new DdpmError(
        'FORMAT',
        `${path}: ${formatBytes(st.size)} exceeds the ${formatBytes(maxBytes)} limit for this file`,
      );
    const out = new Uint8Array(st.size);
    let at = 0;
    while (at < out.length) {
      const { bytesRead } = await fh.read(out, at, out.length - at, at);
      if (bytesRead === 0) break; // truncated while reading: what is there is checked by the parser
      at += bytesRead;
    }
    return at === out.length ? out : out.subarray(0, at);
  } catch (e) {
    throw fsError(e, path, 'reading');
  } finally {
    await fh.close().catch(() => {});
  }
}

/** The first `n` bytes of a regular file and its size (for headers read before the whole file). */
export async function readRegularFileHead(path: string, n: number): Promise<{ head: Uint8Array; size: number }> {
  const fs = await import('node:fs/promises');
  const { constants } = await import('node:fs');
  let fh: Awaited<ReturnType<typeof fs.open>>;
  try {
    fh = await fs.open(path, constants.O_RDONLY | (constants.O_NONBLOCK ?? 0));
  } catch (e) {
    throw fsError(e, path, 'reading');
  }
  try {
    const st = await fh.stat();
    if (!st.isFile()) throw new DdpmError('IO', `${path}: ${kindOf(st)} where a regular file is expected`);
    const head = new Uint8Array(Math.min(n, st.size));
    const { bytesRead } = await fh.read(head, 0, head.length, 0);
    return { head: head.subarray(0, bytesRead), size: st.size };
  } catch (e) {
    throw fsError(e, path, 'reading');
  } finally {
    await fh.close().catch(() => {});
  }
}

/** Reads a regular file as UTF-8 text (see readRegularFile). */
export async function readRegularText(path: string, o: { maxBytes?: number } = {}): Promise<string> {
  return new TextDecoder().decode(await readRegularFile(path, o));
}

/**
 * Checks, before any work, that `path` can later be written as a file: it is absent or a regular file, and
 * its parent is a folder (or can be made one). IO error naming the path otherwise.
 */
export async function checkWritablePath(path: string, flag = 'output'): Promise<void> {
  const fs = await import('node:fs/promises');
  const { dirname, resolve } = await import('node:path');
  const named = (e: unknown) => {
    const io = fsError(e, path, 'writing');
    return new DdpmError('IO', `${flag} ${io.message}`, { cause: e });
  };
  const st = await fs.stat(path).catch((e: Errno) => {
    if (e?.code === 'ENOENT') return null;
    throw named(e);
  });
  if (st && !st.isFile()) throw new DdpmError('IO', `${flag} ${path}: ${kindOf(st)} where a file is expected`);
  // the nearest existing ancestor must be a folder
  let dir = dirname(resolve(path));
  for (;;) {
    const d = await fs.stat(dir).catch((e: Errno) => {
      if (e?.code === 'ENOENT') return null;
      throw named(e);
    });
    if (d) {
      if (!d.isDirectory()) throw new DdpmError('IO', `${flag} ${path}: cannot write: ${dir} is a file, not a folder`);
      return;
    }
    const up = dirname(dir);
    if (up === dir) return;
    dir = up;
  }
}
