// Where model files come from: one interface, FileSource (get(name) → bytes | null), for every way a user
// hands us a model — a folder path (Node, Deno, Bun), a URL or base URL (fetch: browsers, Deno, edge
// workers), a map of file names to bytes / ArrayBuffer / Blob / Response, or a shipped model by name.
// UNet2DModel.fromPretrained, the schedulers' fromPretrained and DDPMPipeline all read through it.
//
// Folder and file: URL access goes through '#platform', so this module is safe in browser and edge bundles
// (there a folder path is an UNSUPPORTED error naming the alternatives).
import { DdpmError } from '../errors.js';
import { PLATFORM, fileUrlToPath, pathModule, readFileOrNull } from '#platform';

/** One file's contents as a user may hold them. */
export type FileData = Uint8Array | ArrayBuffer | ArrayBufferView | Blob | Response | string;

/** A set of named files. `get` resolves to null when the file does not exist (any other failure throws). */
export interface FileSource {
  /** The folder, URL or description, for messages. */
  readonly name: string;
  get(file: string): Promise<Uint8Array | null>;
}

/**
 * What `fromPretrained` accepts: a folder path, a URL (string or URL object; http(s), file: or blob:), a
 * shipped model's name ('mnist'; write './mnist' for a folder of that name), a map or plain object of file
 * names ('config.json', 'unet/config.json' …) to contents, or a FileSource.
 */
export type ModelSource = string | URL | FileSource | Map<string, FileData> | Record<string, FileData>;

/** Models shipped in the package's models/ folder, loadable by name (mnist-cond: class-conditional). */
export const SHIPPED_MODELS: readonly string[] = ['mnist', 'mnist-cond'];

/** The folder of a shipped model, relative to this file (dist/io/sources.js → <package>/models/NAME/). */
export function shippedModelUrl(name: string): URL {
  if (!SHIPPED_MODELS.includes(name)) {
    throw new DdpmError(
      'INVALID_ARGUMENT',
      `no shipped model named ${JSON.stringify(name)} (shipped: ${SHIPPED_MODELS.join(', ')})`,
    );
  }
  return new URL(`../../models/${name}/`, import.meta.url);
}

/** How a shipped model that is not in the package is made (said by the "not installed" errors). */
export function shippedModelHint(name: string): string {
  return name === 'mnist-cond' ? '; it is trained by node scripts/train-mnist.mjs --class-conditional' : '';
}

const URL_SCHEME = /^(https?|file|blob|data):/i;

/**
 * Opens any ModelSource as a FileSource. Folders and URLs are read once per file (loaders look at
 * config.json more than once; a URL should be fetched once); a FileSource given is used as it is.
 */
export function openSource(source: ModelSource): FileSource {
  if (isFileSource(source)) return source;
  if (source instanceof URL) return once(urlSource(source));
  if (typeof source === 'string') {
    if (SHIPPED_MODELS.includes(source))
      return once({ ...urlSource(shippedModelUrl(source)), name: `the shipped model '${source}'` });
    if (URL_SCHEME.test(source)) return once(urlSource(new URL(source)));
    if (source === '')
      throw new DdpmError(
        'INVALID_ARGUMENT',
        'model source: an empty string is neither a folder, a URL nor a shipped model name',
      );
    return once(folderSource(source));
  }
  if (source instanceof Map) return bytesSource(source);
  if (source !== null && typeof source === 'object' && !Array.isArray(source))
    return bytesSource(new Map(Object.entries(source)));
  throw new DdpmError(
    'INVALID_ARGUMENT',
    `model source: expected a folder path, a URL, a shipped model name, a map of file names to bytes or a FileSource, found ${describe(source)}`,
  );
}

function isFileSource(s: unknown): s is FileSource {
  return (
    s !== null &&
    typeof s === 'object' &&
    !(s instanceof Map) &&
    typeof (s as FileSource).get === 'function' &&
    typeof (s as FileSource).name === 'string'
  );
}

function describe(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'an array';
  return typeof v;
}

/** Each file read at most once (the result, null included, is kept for the source's lifetime). */
function once(src: FileSource): FileSource {
  const seen = new Map<string, Promise<Uint8Array | null>>();
  return {
    name: src.name,
    get(file) {
      let p = seen.get(file);
      if (!p) {
        p = src.get(file);
        seen.set(file, p);
        p.catch(() => seen.delete(file)); // a failure is not remembered: a retry reads again
      }
      return p;
    },
  };
}

/** The files under `dir/` of a source (a pipeline folder's unet/, scheduler/). */
export function subfolder(src: FileSource, dir: string): FileSource {
  return { name: `${src.name}/${dir}`, get: (file) => src.get(`${dir}/${file}`) };
}

/** A folder on disk (Node, Deno, Bun). */
export function folderSource(dir: string): FileSource {
  return {
    name: dir,
    async get(file) {
      const { join } = await pathModule();
      return readFileOrNull(join(dir, ...file.split('/')));
    },
  };
}

/**
 * Files under a base URL: `base` + name (a base without a trailing slash gets one). http(s) through fetch:
 * 404 and 410 mean "not there", any other failure is an IO error naming the URL. file: URLs are read from
 * disk by the Node side of '#platform' (Node, Deno, Bun), fetched by the web side (Deno importing dist/web).
 */
export function urlSource(base: URL): FileSource {
  const root = new URL(base.href.endsWith('/') ? base.href : `${base.href}/`);
  return {
    name: root.href,
    async get(file) {
      const url = new URL(file, root);
      if (url.protocol === 'file:' && PLATFORM === 'node') return readFileOrNull(await fileUrlToPath(url));
      let res: Response;
      try {
        res = await fetch(url);
      } catch (e) {
        throw new DdpmError('IO', `${url.href}: fetch failed (${(e as Error).message})`, { cause: e });
      }
      if (res.status === 404 || res.status === 410) return null;
      if (!res.ok) throw new DdpmError('IO', `${url.href}: HTTP ${res.status} ${res.statusText}`);
      return new Uint8Array(await res.arrayBuffer());
    },
  };
}

/** Files held in memory. Each value is read once (a Response body can only be read once) and kept. */
export function bytesSource(files: Map<string, FileData>, name = 'the given files'): FileSource {
  const cache = new Map<string, Promise<Uint8Array>>();
  return {
    name,
    get(file) {
      if (!files.has(file)) return Promise.resolve(null);
      let p = cache.get(file);
      if (!p) {
        p = toBytes(files.get(file)!, file);
        cache.set(file, p);
      }
      return p;
    },
  };
}

/** Any FileData as a Uint8Array (a view where possible, never a copy of a Uint8Array). */
export async function toBytes(data: FileData, what: string): Promise<Uint8Array> {
  if (data instanceof Uint8Array) return data;
  if (data instanceof ArrayBuffer) return new Uint8Array(data);
  if (ArrayBuffer.isView(data)) return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  if (typeof data === 'string') return new TextEncoder().encode(data);
  if (typeof Blob !== 'undefined' && data instanceof Blob) return new Uint8Array(await data.arrayBuffer());
  if (typeof Response !== 'undefined' && data instanceof Response) {
    if (!data.ok) throw new DdpmError('IO', `${what}: the Response has status ${data.status} ${data.statusText}`);
    return new Uint8Array(await data.arrayBuffer());
  }
  throw new DdpmError(
    'INVALID_ARGUMENT',
    `${what}: expected a Uint8Array, ArrayBuffer, Blob, Response or string, found ${describe(data)}`,
  );
}

/** A file that must exist: its bytes, or a FORMAT error naming where it was looked for. */
export async function requireFile(src: FileSource, file: string, why = ''): Promise<Uint8Array> {
  const bytes = await src.get(file);
  if (!bytes) throw new DdpmError('FORMAT', `${src.name}: ${file} is missing${why ? ` (${why})` : ''}`);
  return bytes;
}

/** A JSON object file, or null when absent; invalid JSON or a non-object is a FORMAT error naming it. */
export async function readJsonFile(src: FileSource, file: string): Promise<Record<string, unknown> | null> {
  const bytes = await src.get(file);
  if (!bytes) return null;
  let json: unknown;
  try {
    json = JSON.parse(new TextDecoder().decode(bytes));
  } catch (e) {
    throw new DdpmError('FORMAT', `${src.name}/${file}: not valid JSON (${(e as Error).message})`, { cause: e });
  }
  if (json === null || typeof json !== 'object' || Array.isArray(json))
    throw new DdpmError('FORMAT', `${src.name}/${file}: expected a JSON object`);
  return json as Record<string, unknown>;
}

/** diffusers' variant file name: diffusion_pytorch_model.safetensors + 'fp16' → diffusion_pytorch_model.fp16.safetensors. */
export function variantFile(file: string, variant: string | undefined): string {
  if (variant === undefined) return file;
  if (!/^[A-Za-z0-9_-]+$/.test(variant))
    throw new DdpmError('INVALID_ARGUMENT', `variant must be a name such as 'fp16', found ${JSON.stringify(variant)}`);
  const dot = file.lastIndexOf('.');
  return `${file.slice(0, dot)}.${variant}${file.slice(dot)}`;
}

export const MODEL_INDEX_FILE = 'model_index.json';
export const SCHEDULER_CONFIG_FILE = 'scheduler_config.json';

/** Where a model's and its scheduler's files are: a model folder, or a diffusers pipeline folder. */
export interface ModelLayout {
  /** config.json and the weights. */
  model: FileSource;
  /** scheduler_config.json (beside the model, or the pipeline's scheduler/). */
  scheduler: FileSource;
  /** model_index.json of a pipeline folder, null for a plain model folder. */
  modelIndex: Record<string, unknown> | null;
}

/**
 * A diffusers pipeline folder (model_index.json, unet/, scheduler/) or a plain model folder (config.json
 * with the weights, scheduler_config.json beside them). A folder with unet/config.json and no config.json
 * counts as a pipeline even without model_index.json (what older tools wrote).
 */
export async function modelLayout(src: FileSource): Promise<ModelLayout> {
  const modelIndex = await readJsonFile(src, MODEL_INDEX_FILE);
  if (modelIndex) {
    const unet = modelIndex.unet;
    if (unet !== undefined && !(Array.isArray(unet) && unet.length === 2)) {
      throw new DdpmError(
        'FORMAT',
        `${src.name}/${MODEL_INDEX_FILE}: "unet" must be [library, class name], found ${JSON.stringify(unet)}`,
      );
    }
    return { model: subfolder(src, 'unet'), scheduler: subfolder(src, 'scheduler'), modelIndex };
  }
  if (!(await src.get('config.json')) && (await src.get('unet/config.json'))) {
    return { model: subfolder(src, 'unet'), scheduler: subfolder(src, 'scheduler'), modelIndex: null };
  }
  return { model: src, scheduler: src, modelIndex: null };
}

/**
 * A model's config.json (parsed) and weights, from a model folder's source; `variant` as diffusers'.
 * `weightsFile` may depend on the config (the model class it names).
 */
export async function readModelFiles(
  src: FileSource,
  weightsFile: string | ((config: Record<string, unknown>) => string),
  variant?: string,
): Promise<{ config: Record<string, unknown>; weights: Uint8Array; names: { config: string; weights: string } }> {
  const config = await readJsonFile(src, 'config.json');
  if (!config) throw new DdpmError('FORMAT', `${src.name}: not a model folder (no config.json, no unet/config.json)`);
  if (typeof weightsFile === 'function') weightsFile = weightsFile(config);
  const file = variantFile(weightsFile, variant);
  const weights = await src.get(file);
  if (!weights) {
    const other =
      variant === undefined
        ? null
        : (await src.get(weightsFile))
          ? ` (${weightsFile} is there: drop variant '${variant}')`
          : '';
    throw new DdpmError('FORMAT', `${src.name}: ${file} is missing${other ?? ''}`);
  }
  return { config, weights, names: { config: `${src.name}/config.json`, weights: `${src.name}/${file}` } };
}
