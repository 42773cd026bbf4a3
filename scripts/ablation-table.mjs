// Renders docs/ablations.json (rows appended by scripts/ablate-mnist.mjs) as the markdown table of
// docs/training.md, so no number is copied by hand:  node scripts/ablation-table.mjs [--budget 1500]
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';

const { values: a } = parseArgs({ options: { budget: { type: 'string' }, file: { type: 'string' } } });
const { rows } = JSON.parse(readFileSync(a.file ?? 'docs/ablations.json', 'utf8'));
const pct = (v) => `${(100 * v).toFixed(1)}%`;
const classRange = (h) => `${pct(Math.min(...h))} – ${pct(Math.max(...h))}`;
const budgets = [...new Set(rows.map((r) => r.budgetSteps))].filter((b) => !a.budget || b === Number(a.budget));
for (const budget of budgets) {
  const base = rows.find((r) => r.cell === 'base' && r.budgetSteps === budget);
  console.log(
    `\nBudget: ${budget.toLocaleString('en')} steps of \`base\` (DDIM 50, seed 0, n = ${[...new Set(rows.filter((r) => r.budgetSteps === budget).map((r) => r.n))].join(', ')})\n`,
  );
  console.log(
    '| cell | steps | params | final loss | confident ≥ 0.9 | classes | Fréchet distance | bits/dim (held out) |',
  );
  console.log('| --- | --- | --- | --- | --- | --- | --- | --- |');
  for (const r of rows.filter((r) => r.budgetSteps === budget)) {
    const s = r.eval.samples;
    const b = r.eval.heldOut?.bound;
    const d =
      base && r !== base
        ? ` (${s.confident >= base.eval.samples.confident ? '+' : '−'}${Math.abs(100 * (s.confident - base.eval.samples.confident)).toFixed(1)})`
        : '';
    console.log(
      `| ${r.cell} | ${r.steps.toLocaleString('en')} | ${r.params.toLocaleString('en')} | ${r.finalLoss} | ${pct(s.confident)}${d} | ${classRange(s.classHistogram)} | ${s.frechetDistance.toFixed(1)} | ${b ? `${b.bitsPerDim.toFixed(2)} ± ${b.stdError.toFixed(2)}` : '–'} |`,
    );
  }
}
