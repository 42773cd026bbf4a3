// One writer per run folder (Node, Deno, Bun): <dir>/train.lock holds the writer's pid, host and start
// time, created with O_EXCL ('wx') so two processes can never both create it.
//
// A lock whose pid no longer runs on this host is stale (the writer was killed) and is taken over. A
// takeover goes through a second exclusive file, train.lock.takeover, so two processes that both find the
// same stale lock cannot both replace it (without it, the slower one would delete the faster one's fresh
// lock). A lock held on another host cannot be checked from here: it is reported, never broken.
import { DdpmError } from '../errors.js';
import { fsPromises, osModule, pathModule } from '#platform';

export const LOCK_FILE = 'train.lock';
const LOCK_FORMAT = 'ddpm-wasm.train-lock';

export interface LockHolder {
  pid: number;
  host: string;
  /** ISO 8601 time the lock was taken. */
  started: string;
  /** Unique to the taking process (pid + random): a lock is only ever released by its own holder. */
  token: string;
}

type Fs = typeof import('node:fs/promises');

async function nodeModules(): Promise<{ fs: Fs; join: (...p: string[]) => string; hostname: () => string }> {
  // '#platform': UNSUPPORTED in browsers and edge workers
  const fs = await fsPromises();
  const { join } = await pathModule();
  const { hostname } = await osModule();
  return { fs, join, hostname };
}

/** Parses a lock file's text; null when it is not one (e.g. truncated by a crash during its creation). */
function parseHolder(text: string): LockHolder | null {
  let j: unknown;
  try {
    j = JSON.parse(text);
  } catch {
    return null;
  }
  if (j === null || typeof j !== 'object' || Array.isArray(j)) return null;
  const o = j as Record<string, unknown>;
  const own = (k: string) => (Object.hasOwn(o, k) ? o[k] : undefined);
  if (own('format') !== LOCK_FORMAT) return null;
  const pid = own('pid'),
    host = own('host'),
    started = own('started'),
    token = own('token');
  if (
    !Number.isSafeInteger(pid) ||
    (pid as number) < 1 ||
    typeof host !== 'string' ||
    typeof started !== 'string' ||
    typeof token !== 'string'
  )
    return null;
  return { pid: pid as number, host, started, token };
}

/** Whether process `pid` runs on this machine (signal 0 checks without sending anything). */
export function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    // EPERM: it exists but belongs to another user
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

export function describeHolder(h: LockHolder): string {
  return `pid ${h.pid} on ${h.host}, since ${h.started}`;
}

export class RunLock {
  private released = false;

  private constructor(
    readonly file: string,
    readonly holder: LockHolder,
  ) {}

  /**
   * Takes <dir>/train.lock (creating dir). A live holder → LOCKED naming it; a dead holder on this host
   * (or an unreadable lock file older than a few seconds) is stale and taken over.
   */
  static async acquire(dir: string, token: string): Promise<RunLock> {
    const { fs, join, hostname } = await nodeModules();
    await fs.mkdir(dir, { recursive: true }).catch((e: NodeJS.ErrnoException) => {
      throw new DdpmError('IO', `${dir}: cannot create the run folder (${e.code ?? e.message})`, { cause: e });
    });
    const file = join(dir, LOCK_FILE);
    const me: LockHolder = { pid: process.pid, host: hostname(), started: new Date().toISOString(), token };
    const text = JSON.stringify({ format: LOCK_FORMAT, ...me }) + '\n';
    for (let attempt = 0; attempt < 5; attempt++) {
      if (await createExclusive(fs, file, text)) return new RunLock(file, me);
      const found = await readText(fs, file);
      if (found === null) continue; // released between our two calls: try again
      const holder = parseHolder(found);
      if (holder && !(holder.host === me.host && !pidAlive(holder.pid))) {
        throw new DdpmError(
          'LOCKED',
          `${dir} is being written by another run (${describeHolder(holder)}; lock file ${file}). Wait for it to finish, or use another folder; if that run is gone${holder.host === me.host ? '' : ' (it holds the lock from another host, which cannot be checked from here)'}, delete ${file}.`,
        );
      }
      if (!holder) {
        // a half-written lock of a writer that died while creating it — or one being written right now
        const st = await fs.stat(file).catch(() => null);
        if (st && Date.now() - st.mtimeMs < 5000) {
          throw new DdpmError(
            'LOCKED',
            `${dir}: ${file} is being created by another process (unreadable, ${Math.round(Date.now() - st.mtimeMs)} ms old); try again`,
          );
        }
      }
      await takeOver(fs, file, found, text);
      if (parseHolder((await readText(fs, file)) ?? '')?.token === token) return new RunLock(file, me);
    }
    throw new DdpmError('LOCKED', `${dir}: could not take ${file} (other processes keep taking it)`);
  }

  /** Removes the lock if it is still ours (idempotent). */
  async release(): Promise<void> {
    if (this.released) return;
    this.released = true;
    const { fs } = await nodeModules();
    const found = await readText(fs, this.file);
    if (found !== null && parseHolder(found)?.token === this.holder.token) await fs.rm(this.file, { force: true });
  }

  /** Throws LOCKED unless the lock file still names this holder (checked before each write of a run). */
  async check(): Promise<void> {
    const { fs } = await nodeModules();
    const found = await readText(fs, this.file);
    const h = found === null ? null : parseHolder(found);
    if (this.released || h?.token !== this.holder.token) {
      throw new DdpmError(
        'LOCKED',
        `${this.file}: this run no longer holds the lock (${h ? `now held by ${describeHolder(h)}` : 'it was removed'}); stopping before writing`,
      );
    }
  }
}

async function createExclusive(fs: Fs, file: string, text: string): Promise<boolean> {
  let fh;
  try {
    fh = await fs.open(file, 'wx');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw new DdpmError(
      'IO',
      `${file}: cannot create the lock file (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`,
      { cause: e },
    );
  }
  try {
    await fh.writeFile(text);
    await fh.sync();
  } finally {
    await fh.close();
  }
  return true;
}

async function readText(fs: Fs, file: string): Promise<string | null> {
  try {
    return await fs.readFile(file, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw new DdpmError(
      'IO',
      `${file}: cannot read the lock file (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`,
      { cause: e },
    );
  }
}

/** Replaces the stale lock whose text is `stale` with ours, under the takeover file. */
async function takeOver(fs: Fs, file: string, stale: string, text: string): Promise<void> {
  const guard = `${file}.takeover`;
  if (!(await createExclusive(fs, guard, text))) {
    // another process is taking over; unless it died doing so (then its guard is stale too)
    const g = parseHolder((await readText(fs, guard)) ?? '');
    const st = await fs.stat(guard).catch(() => null);
    const dead = g ? !pidAlive(g.pid) : st !== null && Date.now() - st.mtimeMs > 5000;
    if (dead) await fs.rm(guard, { force: true });
    return;
  }
  try {
    // still the same stale lock (not one a faster process already replaced)?
    if ((await readText(fs, file)) === stale) {
      await fs.rm(file, { force: true });
      await createExclusive(fs, file, text);
    }
  } finally {
    await fs.rm(guard, { force: true });
  }
}
