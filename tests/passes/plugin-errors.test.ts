/** A plugin's runtime errors point into its own source, and a plugin outside the package can use immer's produce. */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { lapidary, expectCleanFailure } from '../cli/helpers';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'lapidary-plugin-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));
const compile = (plugin: string) => lapidary(['compile', 'gemma2.model', '--variant', '2b', '--hparam', 'n_layers=1', '--plugin', plugin]);

test('an error thrown in run, in a TypeScript plugin, is located at its line and column in the .ts file', () => {
  const file = path.join(tmp, 'throws.ts');
  fs.writeFileSync(
    file,
    `import { definePass } from 'lapidary';

interface Cfg { limit: number }

export default definePass({
  name: 'thrower',
  description: 'reads a field of null',
  run(g) {
    const cfg = null as Cfg | null;
    return (cfg as Cfg).limit > 0 ? g : g;
  },
});
`,
  );
  const r = compile(file);
  expectCleanFailure(r);
  expect(r.stderr).toMatch(new RegExp(`pass 'thrower' \\(from .*throws\\.ts\\) failed at .*throws\\.ts:10:\\d+: Cannot read properties of null \\(reading 'limit'\\)`));
});

test("errors while loading or in a factory are located too; `import { produce } from 'lapidary'` works from anywhere", () => {
  const factory = path.join(tmp, 'factory.mjs');
  fs.writeFileSync(factory, `export default (api) => {\n  const x = null;\n  return x.y;\n};\n`);
  const f = compile(factory);
  expectCleanFailure(f);
  expect(f.stderr).toMatch(/its default export \(api\) => … threw at .*factory\.mjs:3:12: Cannot read properties of null/);

  const immerPlugin = path.join(tmp, 'rename.mjs');
  fs.writeFileSync(
    immerPlugin,
    `import { definePass, produce } from 'lapidary';
export default definePass({
  name: 'rename-graph',
  description: 'renames the graph with immer',
  run: (g) => produce(g, (d) => { d.name = 'renamed'; }),
});
`,
  );
  const ok = lapidary(['compile', 'gemma2.model', '--variant', '2b', '--hparam', 'n_layers=1', '--plugin', immerPlugin, '--json']);
  expect(ok.stderr).toBe('');
  expect(JSON.parse(ok.stdout).passes.find((p: { name: string }) => p.name === 'rename-graph').changed).toBe(true);
});

test("run and generate show a pass's ctx.log lines too (compile already did)", () => {
  const file = path.join(tmp, 'logs.mjs');
  fs.writeFileSync(file, `import { definePass } from 'lapidary';\nexport default definePass({ name: 'say', description: 'logs', run: (g, ctx) => { ctx.log('checked ' + g.nodes.length + ' nodes'); return g; } });\n`);
  const ids = path.join(tmp, 'ids.json');
  fs.writeFileSync(ids, '[[2, 9, 16]]');
  const r = lapidary(['run', 'gemma2.model', '--checkpoint', 'tests/fixtures/gemma2-tiny', '--input-ids', ids, '--plugin', file]);
  expect(r.code).toBe(0);
  expect(r.stderr).toMatch(/lapidary: pass log: say: checked \d+ nodes/);
});
