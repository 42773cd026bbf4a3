// Generates src/engine/wasm-interface.generated.ts, the TypeScript side of the Wasm interface, from
// assembly/index.ts — the one file that lists every export — on every `npm run build` (after the Wasm
// builds, before tsc). The output is not committed: it is rebuilt from the sources each time, so it
// cannot go stale (.gitignore lists it). docs/wasm-interface.md describes the whole mechanism.
//
// 1. Parse assembly/index.ts with TypeScript's compiler API (AssemblyScript is TypeScript syntax) and
//    follow its `export * from` / `export { a, b as c } from` re-exports, in order. Every exported
//    function is either a kernel — last parameters `ith: i32, nth: i32`, returns void: it gets an id (its
//    position in that order) and is dispatched on the worker pool — or a query (abi_version, build_id,
//    madd_probe …) called directly. Every exported `const` is an ABI constant.
// 2. Read each build in build/wasm/ (asconfig.json's targets): every kernel and query must be exported with
//    the parsed arity, and every constant as a global, whose value is the one the AssemblyScript compiler
//    folded for that build — so a constant derived from ASC_FEATURE_* (the GEMM workspace depends on the
//    micro-tile, 6 rows with relaxed SIMD, 5 without) gets its per-build value, and no expression is
//    re-evaluated here. Any disagreement between the parse and the builds fails the build.
// 3. Emit: the constants (a number, or a record by build when the builds differ), `KERNEL` (ids by name),
//    `KERNELS` (name, source file, parameter names and Wasm types, by id), `KernelArgs` (each kernel's
//    argument tuple by id, so `engine.run(KERNEL.x, [...])` with the wrong count is a type error), and the
//    queries' signatures. Engine.create binds every entry once (presence and arity checked, constants
//    compared) and the workers dispatch by id.
//
// Only scalar types cross the interface (i32, u32, usize pointers, f32, f64, bool): arguments travel
// through a Float64Array control block, exact for all of them; an i64 or v128 parameter is a build error.
//
//   node scripts/gen-bindings.mjs [--entry assembly/index.ts] [--out src/engine/wasm-interface.generated.ts]
//                                 [--no-builds]   (skip step 2: signatures only, constants without values)
import { readFileSync, writeFileSync, existsSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import ts from 'typescript';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');

/** Wasm value types a kernel argument or constant may have, and how JS sees them. */
const SCALARS = new Set(['i32', 'u32', 'usize', 'f32', 'f64', 'bool']);
/** Unsigned types: a Wasm i32 global reads back signed in JS, so these are reinterpreted (>>> 0). */
const UNSIGNED = new Set(['u32', 'usize']);

class InterfaceError extends Error {}

function where(sf, node) {
  const { line } = sf.getLineAndCharacterOfPosition(node.getStart(sf));
  return `${relative(root, sf.fileName)}:${line + 1}`;
}

function isExported(node) {
  return (node.modifiers ?? []).some((m) => m.kind === ts.SyntaxKind.ExportKeyword);
}

function typeName(sf, typeNode) {
  return typeNode ? typeNode.getText(sf).trim() : null;
}

/** The first sentence of a declaration's JSDoc comment, or ''. */
function docOf(node) {
  const doc = ts.getJSDocCommentsAndTags(node).find((d) => d.kind === ts.SyntaxKind.JSDoc);
  const text = typeof doc?.comment === 'string' ? doc.comment : '';
  const paragraph = text
    .split(/\n\s*\n/)[0]
    .replace(/\s+/g, ' ')
    .trim();
  const end = paragraph.search(/\.(\s|$)/);
  return (end >= 0 ? paragraph.slice(0, end + 1) : paragraph).replace(/\*\//g, '*\\/');
}

function resolveModule(fromFile, spec) {
  const p = resolve(dirname(fromFile), spec);
  for (const candidate of [p, `${p}.ts`, join(p, 'index.ts')]) {
    if (existsSync(candidate) && candidate.endsWith('.ts')) return candidate;
  }
  throw new InterfaceError(`${relative(root, fromFile)}: cannot resolve '${spec}'`);
}

/** An export that cannot cross the interface: an error only if the entry file ends up exporting it. */
function unsupported(name, at, why) {
  return {
    kind: 'unsupported',
    name,
    why: `${at}: ${why}; only functions over ${[...SCALARS].join(', ')} and const scalars cross the Wasm interface`,
  };
}

/**
 * The exports of one AssemblyScript module, in source order, following re-exports: functions
 * ({ kind: 'function', name, file, params: [{ name, type }], result }) and constants
 * ({ kind: 'const', name, file, type, doc }).
 */
function moduleExports(file, seen = new Map()) {
  if (seen.has(file)) return seen.get(file);
  const sf = ts.createSourceFile(file, readFileSync(file, 'utf8'), ts.ScriptTarget.Latest, true);
  const out = [];
  seen.set(file, out);
  const rel = relative(root, file);
  for (const st of sf.statements) {
    if (ts.isFunctionDeclaration(st) && isExported(st)) {
      const name = st.name?.text ?? 'default';
      const bad = st.parameters.find((p) => !SCALARS.has(typeName(sf, p.type)));
      const result = typeName(sf, st.type) ?? 'void';
      if (bad) {
        const type = typeName(sf, bad.type) ?? '(none)';
        out.push(unsupported(name, where(sf, bad), `parameter ${bad.name.getText(sf)} of ${name} has type ${type}`));
      } else if (result !== 'void' && !SCALARS.has(result)) {
        out.push(unsupported(name, where(sf, st), `${name} returns ${result}, not a scalar or void`));
      } else {
        const params = st.parameters.map((p) => ({ name: p.name.getText(sf), type: typeName(sf, p.type) }));
        out.push({ kind: 'function', name, file: rel, params, result, doc: docOf(st) });
      }
    } else if (ts.isVariableStatement(st) && isExported(st)) {
      if (!(st.declarationList.flags & ts.NodeFlags.Const))
        throw new InterfaceError(`${where(sf, st)}: an exported variable must be const to be an ABI constant`);
      for (const d of st.declarationList.declarations) {
        const name = d.name.getText(sf);
        const type = typeName(sf, d.type) ?? 'i32';
        if (!SCALARS.has(type)) out.push(unsupported(name, where(sf, d), `constant ${name} has type ${type}`));
        else out.push({ kind: 'const', name, file: rel, type, doc: docOf(st) });
      }
    } else if (ts.isExportDeclaration(st) && st.moduleSpecifier) {
      const spec = /** @type {import('typescript').StringLiteral} */ (st.moduleSpecifier).text;
      const from = moduleExports(resolveModule(file, spec), seen);
      if (!st.exportClause) out.push(...from);
      else if (ts.isNamedExports(st.exportClause)) {
        for (const el of st.exportClause.elements) {
          const original = (el.propertyName ?? el.name).text;
          const item = from.find((x) => x.name === original);
          if (!item) throw new InterfaceError(`${where(sf, el)}: ${spec} does not export ${original}`);
          out.push({ ...item, name: el.name.text });
        }
      } else throw new InterfaceError(`${where(sf, st)}: \`export * as\` is not supported in the Wasm interface`);
    } else if ((ts.isClassDeclaration(st) || ts.isEnumDeclaration(st)) && isExported(st)) {
      const name = st.name?.text ?? 'default';
      out.push(unsupported(name, where(sf, st), `${name} is a class or enum`));
    }
  }
  return out;
}

/** The interface of an entry file: kernels (with ids), queries and constants. */
export function readInterface(entry) {
  const all = moduleExports(resolve(entry));
  const names = new Set();
  for (const x of all) {
    if (x.kind === 'unsupported') throw new InterfaceError(x.why);
    if (names.has(x.name)) throw new InterfaceError(`the Wasm interface exports ${x.name} twice (${x.file})`);
    names.add(x.name);
  }
  const kernels = [];
  const queries = [];
  for (const f of all.filter((x) => x.kind === 'function')) {
    const n = f.params.length;
    const isKernel = n >= 2 && f.params[n - 2].name === 'ith' && f.params[n - 1].name === 'nth';
    if (isKernel) {
      if (f.params[n - 2].type !== 'i32' || f.params[n - 1].type !== 'i32' || f.result !== 'void')
        throw new InterfaceError(`${f.file}: kernel ${f.name} must take (…, ith: i32, nth: i32) and return void`);
      kernels.push({ ...f, params: f.params.slice(0, -2) });
    } else queries.push(f);
  }
  return { kernels, queries, constants: all.filter((x) => x.kind === 'const') };
}

/** Reads every build of asconfig.json: checks exports and arity, returns constant values per build. */
async function readBuilds(iface) {
  const config = JSON.parse(readFileSync(join(root, 'asconfig.json'), 'utf8'));
  const values = {}; // build → name → value
  let relaxedFlag = false;
  for (const [build, options] of Object.entries(config.targets)) {
    const file = join(root, options.outFile);
    const bytes = readFileSync(file);
    let module;
    try {
      module = new WebAssembly.Module(bytes);
    } catch (e) {
      // Node 20 validates relaxed SIMD only behind a V8 flag (set before the next compile, as the engine does).
      if (relaxedFlag) throw e;
      relaxedFlag = true;
      (await import('node:v8')).setFlagsFromString('--experimental-wasm-relaxed-simd');
      module = new WebAssembly.Module(bytes);
    }
    const memory = new WebAssembly.Memory({ initial: 16, maximum: 65536, shared: !!options.sharedMemory });
    const { exports } = new WebAssembly.Instance(module, { env: { memory } });
    const expected = new Set();
    for (const f of [...iface.kernels, ...iface.queries]) {
      expected.add(f.name);
      const arity = f.params.length + (iface.kernels.includes(f) ? 2 : 0);
      const fn = exports[f.name];
      if (typeof fn !== 'function')
        throw new InterfaceError(`${options.outFile} has no function export ${f.name} (${f.file})`);
      if (fn.length !== arity)
        throw new InterfaceError(
          `${options.outFile}: ${f.name} takes ${fn.length} arguments, ${f.file} declares ${arity}`,
        );
    }
    values[build] = {};
    for (const c of iface.constants) {
      expected.add(c.name);
      const g = exports[c.name];
      if (!(g instanceof WebAssembly.Global))
        throw new InterfaceError(`${options.outFile} has no global export ${c.name} (${c.file})`);
      values[build][c.name] = UNSIGNED.has(c.type) ? g.value >>> 0 : c.type === 'bool' ? +g.value : g.value;
    }
    const extra = WebAssembly.Module.exports(module).filter((e) => !expected.has(e.name));
    if (extra.length > 0)
      throw new InterfaceError(
        `${options.outFile} exports ${extra.map((e) => e.name).join(', ')}, which the parse of assembly/index.ts missed`,
      );
  }
  return values;
}

const q = (s) => `'${s}'`;
const key = (s) => (/^[A-Za-z_$][\w$]*$/.test(s) ? s : q(s));

function signature(f, withThreads) {
  const ps = f.params.map((p) => `${p.name}: ${p.type}`);
  if (withThreads) ps.push('ith', 'nth');
  return `${f.name}(${ps.join(', ')})`;
}

function emit(iface, values, entry) {
  const builds = values ? Object.keys(values) : [];
  const L = [];
  L.push(
    `// Generated by scripts/gen-bindings.mjs from ${entry} (and the modules it re-exports) and the builds in`,
    '// build/wasm/, on every `npm run build`. Not committed; do not edit. See docs/wasm-interface.md.',
    '',
    '/** The Wasm builds (asconfig.json targets). */',
    `export type WasmBuild = ${builds.length ? builds.map(q).join(' | ') : 'string'};`,
    '',
    '/** Wasm value types that cross the interface (usize: a byte pointer into the shared memory). */',
    `export type WasmType = ${[...SCALARS].map(q).join(' | ')};`,
    '',
    '// ABI constants: the exported consts of the interface, with the values the compiler gave each build.',
  );
  const constEntries = [];
  for (const c of iface.constants) {
    const per = builds.map((b) => values[b][c.name]);
    const same = per.every((v) => v === per[0]);
    const doc = c.doc ? `${c.doc} ` : '';
    if (!values) {
      L.push(`/** ${doc}(${c.file}; no build read) */`, `export declare const ${c.name}: number;`);
    } else if (same) {
      L.push(`/** ${doc}(${c.file}) */`, `export const ${c.name} = ${per[0]};`);
    } else {
      L.push(
        `/** ${doc}(${c.file}; differs per build) */`,
        `export const ${c.name} = { ${builds.map((b, i) => `${key(b)}: ${per[i]}`).join(', ')} } as const;`,
      );
    }
    constEntries.push(`  { name: ${q(c.name)}, type: ${q(c.type)}, value: ${c.name} },`);
  }
  L.push(
    '',
    '/** Every ABI constant, for the check at Engine.create that a module was built from the same interface. */',
    'export const CONSTANTS: readonly {',
    '  readonly name: string;',
    '  readonly type: WasmType;',
    '  readonly value: number | Readonly<Record<WasmBuild, number>>;',
    '}[] = [',
    ...constEntries,
    '];',
    '',
    '/** Kernel ids by export name: `engine.run(KERNEL.axpy_f32, [n, a, x.ptr, y.ptr])`. */',
    'export const KERNEL = {',
  );
  iface.kernels.forEach((k, id) => L.push(`  /** ${signature(k, true)}, ${k.file} */`, `  ${k.name}: ${id},`));
  L.push(
    '} as const;',
    '',
    'export type KernelId = (typeof KERNEL)[keyof typeof KERNEL];',
    '',
    'export interface KernelSignature {',
    '  readonly name: string;',
    '  readonly file: string;',
    '  /** Before the (ith, nth) every kernel takes last. */',
    '  readonly params: readonly (readonly [name: string, type: WasmType])[];',
    '}',
    '',
    '/** Each kernel by id: its export name, source file and parameters. */',
    'export const KERNELS: readonly KernelSignature[] = [',
  );
  for (const k of iface.kernels) {
    const ps = k.params.map((p) => `[${q(p.name)}, ${q(p.type)}]`).join(', ');
    L.push(`  { name: ${q(k.name)}, file: ${q(k.file)}, params: [${ps}] },`);
  }
  L.push(
    '];',
    '',
    '/** The arguments of each kernel by id, without (ith, nth): a call with the wrong count is a type error. */',
    'export interface KernelArgs {',
  );
  iface.kernels.forEach((k, id) => {
    L.push(`  /** ${k.name} */`, `  ${id}: readonly [${k.params.map((p) => `${p.name}: number`).join(', ')}];`);
  });
  L.push(
    '}',
    '',
    '/** The exports that are not kernels, called directly on an instance. */',
    'export interface Queries {',
  );
  for (const f of iface.queries) {
    L.push(
      `  /** ${f.doc ? `${f.doc} ` : ''}(${f.file}) */`,
      `  ${f.name}(${f.params.map((p) => `${p.name}: number`).join(', ')}): ${f.result === 'void' ? 'void' : 'number'};`,
    );
  }
  L.push(
    '}',
    '',
    '/** Arity of each query, by name. */',
    `export const QUERIES: Readonly<Record<keyof Queries, number>> = {`,
    ...iface.queries.map((f) => `  ${f.name}: ${f.params.length},`),
    '};',
    '',
  );
  return L.join('\n');
}

async function main(argv) {
  const opt = (name, dflt) => {
    const i = argv.indexOf(name);
    return i >= 0 ? argv[i + 1] : dflt;
  };
  const entry = opt('--entry', 'assembly/index.ts');
  const out = opt('--out', 'src/engine/wasm-interface.generated.ts');
  try {
    const iface = readInterface(resolve(root, entry));
    const values = argv.includes('--no-builds') ? null : await readBuilds(iface);
    writeFileSync(resolve(root, out), emit(iface, values, entry));
    console.log(
      `${out}: ${iface.kernels.length} kernels, ${iface.queries.length} queries, ${iface.constants.length} constants`,
    );
  } catch (e) {
    if (!(e instanceof InterfaceError)) throw e;
    console.error(`gen-bindings: ${e.message}`);
    process.exit(1);
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(resolve(process.argv[1])).href)
  await main(process.argv.slice(2));
