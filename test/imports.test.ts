// The import graph of src/ (DESIGN.md, "Layers"): arrows point down only, and no two modules need each
// other's values. Type-only imports (`import type`) are erased at run time and may cross either way.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, normalize, relative } from 'node:path';
import { describe, expect, it } from 'vitest';

const src = join(__dirname, '..', 'src');

/** Bottom to top; a module may import from its own layer and the ones before it. */
const LAYERS = [
  'errors.ts',
  'event-loop.ts',
  'random.ts',
  'validate.ts',
  'platform',
  'engine',
  'limits.ts',
  'kernels',
  'io',
  'nn',
  'diffusion',
  'pipelines',
  'train',
  'eval',
  'cli',
  'cli.ts',
  'index.ts',
];

// Known exceptions (none left: keep it that way).
const ALLOWED_UPWARD = new Set<string>([]);
const ALLOWED_CYCLES = new Set<string>([]);

function sources(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) return sources(p);
    return p.endsWith('.ts') && !p.endsWith('.d.ts') ? [p] : [];
  });
}

interface Edge {
  from: string;
  to: string;
  typeOnly: boolean;
}

/** Every relative import and re-export of every module, as paths relative to src/. */
function edges(): Edge[] {
  const out: Edge[] = [];
  // `import … from '…'`, `export … from '…'` (statements may span lines) and `import('…')`
  const pattern = /(?:^|\n)\s*(import|export)(\s+type)?\b[^;'"]*?from\s*'(\.[^']+)'|import\(\s*'(\.[^']+)'\s*\)/g;
  for (const file of sources(src)) {
    const text = readFileSync(file, 'utf8');
    for (const m of text.matchAll(pattern)) {
      const target = normalize(join(dirname(file), m[3] ?? m[4])).replace(/\.js$/, '.ts');
      out.push({ from: relative(src, file), to: relative(src, target), typeOnly: m[2] !== undefined });
    }
  }
  return out;
}

const layerOf = (path: string) => path.split('/')[0];

describe('import graph of src/', () => {
  const all = edges();

  it('finds the imports it checks', () => {
    expect(all.length).toBeGreaterThan(100);
    expect(all).toContainEqual({ from: 'index.ts', to: 'engine/engine.ts', typeOnly: false });
  });

  it('every top-level file and folder has a layer', () => {
    expect(readdirSync(src).filter((name) => !name.endsWith('.d.ts') && !LAYERS.includes(name))).toEqual([]);
  });

  it('no module imports from a layer above its own', () => {
    const upward = all
      .filter((e) => !e.typeOnly && LAYERS.indexOf(layerOf(e.to)) > LAYERS.indexOf(layerOf(e.from)))
      .map((e) => `${e.from} -> ${e.to}`)
      .filter((e) => !ALLOWED_UPWARD.has(e));
    expect(upward).toEqual([]);
  });

  it('no cycle among value imports', () => {
    const next = new Map<string, string[]>();
    for (const e of all) if (!e.typeOnly) next.set(e.from, [...(next.get(e.from) ?? []), e.to]);
    // depth-first search; a cycle is reported as the first module on it and the module closing it
    const cycles: string[] = [];
    const state = new Map<string, 'open' | 'done'>();
    const visit = (m: string, path: string[]) => {
      state.set(m, 'open');
      for (const n of next.get(m) ?? []) {
        if (state.get(n) === 'open') {
          const loop = [...path.slice(path.indexOf(n)), m].filter((x, i, a) => a.indexOf(x) === i);
          const key = loop.length === 2 ? [...loop].sort().join(' <-> ') : `${loop.join(' -> ')} -> ${n}`;
          if (!ALLOWED_CYCLES.has(key)) cycles.push(key);
        } else if (!state.has(n)) visit(n, [...path, m]);
      }
      state.set(m, 'done');
    };
    for (const m of [...next.keys()].sort()) if (!state.has(m)) visit(m, []);
    expect(cycles).toEqual([]);
  });
});
