import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { lapidary, ROOT } from './helpers';

// `lapidary compile --target tpu` writes cost.json; `lapidary cost --json` prints the plan. Same options, same plan.
test('compile --target tpu and cost agree on the plan they report', () => {
  const out = fs.mkdtempSync(path.join(os.tmpdir(), 'lapidary-tpu-'));
  try {
    const cfg = path.join(ROOT, 'tests/fixtures/gemma2-tiny/config.json');
    const plan = ['--chip', 'v5e', '--topology', '2x2', '--mesh', 'data=2,model=2', '--mode', 'train', '--batch', '4', '--seq', '16'];
    const c = lapidary(['compile', 'gemma2.model', '--config', cfg, '--target', 'tpu', ...plan, '-o', path.join(out, 'prog')]);
    expect(c.stderr).toBe('');
    expect(c.code).toBe(0);
    const fromCompile = JSON.parse(fs.readFileSync(path.join(out, 'prog', 'cost.json'), 'utf8'));
    const r = lapidary(['cost', 'gemma2.model', '--config', cfg, ...plan, '--json']);
    expect(r.code).toBe(0);
    const fromCost = JSON.parse(r.stdout);
    for (const k of ['step_time_s', 'mfu', 'tokens_per_s_per_chip', 'memory_per_chip_bytes', 'fits']) expect(fromCompile[k]).toEqual(fromCost[k]);
    expect(fs.readFileSync(path.join(out, 'prog', 'program.mlir'), 'utf8')).toMatch(/bf16/);
  } finally {
    fs.rmSync(out, { recursive: true, force: true });
  }
});
