/**
 * The sharding overlay: the per-node layouts, collectives and per-chip times `viz --mesh` shows come from the
 * TPU backend's partitioner and agree with `lapidary cost`'s plan of the same graph; the page data carries them
 * per pipeline step; the CLI checks its TPU options like `lapidary cost` does.
 */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { compileModel } from '../../grammar';
import { Graph, getNode } from '../../src/ir';
import { evaluatePlan, getChip, makeMesh, parseStrategy, resolveTopology } from '../../src/backends/tpu';
import { shardGraph } from '../../src/viz/sharding';
import { SHARDING_METRICS, buildVizData } from '../../src/viz/data';
import { replaySteps } from '../../src/viz/client/model';
import { pipelineSteps } from '../../src/cli/commands/viz';
import { resolvePipeline } from '../../src/passes';
import { expectCleanFailure, lapidary } from '../cli/helpers';

const ROOT = path.join(__dirname, '..', '..');
const MODEL = path.join(ROOT, 'gemma2.model');
const TINY_CONFIG = path.join(ROOT, 'tests', 'fixtures', 'gemma2-tiny', 'config.json');
const DIMS = { batch: 8, seq: 16 };

function tiny(): Graph {
  const r = compileModel(fs.readFileSync(MODEL, 'utf8'), 'gemma2.model', { config: JSON.parse(fs.readFileSync(TINY_CONFIG, 'utf8')), dims: DIMS });
  if (!r.graph) throw new Error(r.diagnostics.map((d) => d.message).join('\n'));
  return r.graph;
}

const PLAN = { chip: 'v5e', mesh: 'data=4,model=2', mode: 'forward' as const };
function meshOf() {
  const mesh = makeMesh(resolveTopology(getChip(PLAN.chip), PLAN), PLAN.mesh);
  return { mesh, strategy: parseStrategy(undefined, mesh) };
}

const rel = (a: number, b: number) => Math.abs(a - b) / Math.max(Math.abs(a), Math.abs(b), 1e-30);

describe('shardGraph', () => {
  const g = tiny();
  const { mesh, strategy } = meshOf();
  const sh = shardGraph(g, mesh, strategy);
  const plan = evaluatePlan(g, PLAN, DIMS);

  test('per-node times and collectives add up to the plan of lapidary cost', () => {
    expect(strategy.name).toBe('fsdp+tp');
    expect(sh.size).toBe(g.nodes.length);
    const compute = [...sh.values()].reduce((s, x) => s + x.cost.time, 0);
    expect(compute).toBeGreaterThan(0);
    expect(rel(compute, plan.compute_s)).toBeLessThan(1e-9);
    const comm = [...sh.values()].reduce((s, x) => s + (x.layout.collectives ?? []).reduce((t, c) => t + c.seconds, 0), 0);
    const planComm = Object.values(plan.per_layer).reduce((s, L) => s + L.weight_comm_s + L.activation_comm_s, 0);
    expect(comm).toBeGreaterThan(0);
    expect(rel(comm, planComm)).toBeLessThan(1e-9);
    // Every weight's layout is the one the plan reports.
    for (const n of g.nodes.filter((x) => x.op === 'param')) expect(sh.get(n.id)!.layout.spec).toBe(plan.param_specs[String(n.attrs.name)]);
  });

  test('Megatron layouts: column-parallel q_proj, row-parallel down_proj reduced over the model axis', () => {
    const byWeight = (w: string) => g.nodes.find((n) => n.op === 'matmul' && n.inputs.some((i) => getNode(g, i).attrs.name === w))!;
    const q = sh.get(byWeight('model.layers.1.self_attn.q_proj.weight').id)!.layout;
    // [batch, seq, heads*head_dim]: the batch over data, the features over model; per chip 8/4 × 16 × 64/2.
    expect(q.spec).toBe('[data, -, model]');
    expect(q.local).toBe('bf16[2, 16, 32]');
    expect(q.ways).toBe(8);
    expect(q.hlo).toBe('{devices=[4,1,2]<=[8]}');
    // FSDP: q_proj's weight [out, in] is split over model (out) and data (in), and all-gathered over data for the matmul.
    expect(q.collectives).toEqual([{ kind: 'all-gather', axes: 'data', bytes: 64 * 64 * 2 / 2, seconds: expect.any(Number), weights: true }]);
    // The down projection contracts the model-split d_ff: its partial sums are all-reduced (over model) where
    // the residual stream uses them: [8/4, 16, 64] bf16 = 4096 bytes.
    const down = byWeight('model.layers.1.mlp.down_proj.weight');
    const users = g.nodes.filter((n) => n.inputs.includes(down.id));
    const reduced = users.flatMap((u) => sh.get(u.id)!.layout.collectives ?? []).filter((c) => c.kind === 'all-reduce');
    expect(reduced).toEqual([{ kind: 'all-reduce', axes: 'model', bytes: 2 * 16 * 64 * 2, seconds: expect.any(Number) }]);
    expect(sh.get(down.id)!.layout.spec).toBe('[data, -, -]');
    // Inputs: the ids split over the data axis; positions replicated.
    const ids = g.nodes.find((n) => n.op === 'input' && n.attrs.name === 'input_ids')!;
    expect(sh.get(ids.id)!.layout.spec).toBe('[data, -]');
  });

  test('page data: sharding metrics per node and per step, re-sent when a pass changes a layout or a cost', () => {
    const steps = pipelineSteps(g, resolvePipeline({ passes: ['softcap-folding', 'cse'] }));
    const perStep = steps.map((s) => shardGraph(s.graph, mesh, strategy));
    const data = buildVizData(steps, { costEnv: {}, sharding: { steps: perStep, mesh: 'data=4,model=2 on 8 v5e' } });
    expect(data.metrics.slice(-SHARDING_METRICS.length)).toEqual(SHARDING_METRICS);
    expect(data.mesh).toBe('data=4,model=2 on 8 v5e');
    const tables = replaySteps(data);
    const ti = data.metrics.findIndex((m) => m.key === 'chip_time');
    const wi = data.metrics.findIndex((m) => m.key === 'ways');
    steps.forEach((s, k) => {
      for (const n of s.graph.nodes) {
        const v = tables[k].get(n.id)!;
        const want = perStep[k].get(n.id)!;
        expect(v.sharding).toEqual(want.layout);
        expect(v.m![ti]).toBe(want.cost.time);
        expect(v.m![wi]).toBe(want.layout.ways);
      }
    });
    expect(() => buildVizData(steps, { sharding: { steps: perStep.slice(1), mesh: '' } })).toThrow(/sharding for 2 steps, but 3/);
  });
});

describe('viz --mesh on the command line', () => {
  let dir: string;
  beforeAll(() => (dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lapidary-vizmesh-'))));
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));
  const base = ['viz', MODEL, '--config', TINY_CONFIG];

  test('writes a page with the mesh and the plan in its header data', () => {
    const out = path.join(dir, 'm.html');
    const r = lapidary([...base, '--batch', '8', '--seq', '16', '--chip', 'v5e', '--mesh', 'data=4,model=2', '--no-passes', '-o', out]);
    expect(r.stderr).toMatch(/wrote/);
    expect(r.code).toBe(0);
    const html = fs.readFileSync(out, 'utf8');
    const data = JSON.parse(/id="lapidary-data">(.*?)<\/script>/s.exec(html)![1]);
    expect(data.info.mesh).toBe('data=4,model=2 on 8 v5e (2x4), fsdp+tp');
    const plan = evaluatePlan(tiny(), PLAN, DIMS);
    expect(data.info.plan).toBe(`step ${(plan.step_time_s * 1e3).toPrecision(3)} ms (forward), MFU ${(100 * plan.mfu).toFixed(1)}%, ${(plan.memory_per_chip_bytes / 1e9).toFixed(2)} GB/chip, ${plan.bound}-bound`);
    expect(data.steps[0].upsert.every((n: { sharding?: unknown }) => n.sharding)).toBe(true);
  });

  test.each([
    [['--mesh', 'data=4,model=2'], /--mesh partitions the graph at concrete sizes: give --batch and --seq/],
    [['--batch', '8', '--seq', '16', '--mesh', 'auto'], /give an explicit --mesh/],
    [['--batch', '8', '--seq', '16', '--topology', '4x4'], /option --topology describes the sharding overlay: give --mesh too/],
    [['--batch', '8', '--seq', '16', '--chips', '8', '--mesh', 'data=3,model=2'], /data=3,model=2/],
    [['--batch', '8', '--seq', '16', '--mesh', 'data=8', '--strategy', 'zz'], /--strategy: unknown part 'zz'/],
    [['--batch', '8', '--seq', '16', '--chip', 'v9', '--mesh', 'data=8'], /unknown chip 'v9' \(option --chip\)/],
    [['--batch', '8', '--seq', '16', '--mesh', 'data=8', '--format', 'json'], /cannot be combined with --format json/],
    [['--batch', '8', '--seq', '16', '--mesh', 'data=8', '--matmul-efficiency', '2'], /--matmul-efficiency takes a number in \(0, 1\]/],
  ])('%j is a clean error', (args, msg) => {
    const out = path.join(dir, `${args.join('_').replace(/\W/g, '')}.html`);
    const r = lapidary([...base, ...args, '-o', out]);
    expectCleanFailure(r);
    expect(r.stderr).toMatch(msg);
    expect(fs.existsSync(out)).toBe(false);
  });
});
