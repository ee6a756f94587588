import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { GraphBuilder, Graph } from '../../src/ir';
import { getChip, parseTopology, makeMesh, parseStrategy, evaluateOn, evaluateAnalytic } from '../../src/backends/tpu';
import { Command, CommanderError } from 'commander';
import { commands } from '../../src/cli/commands';
import { UserError } from '../../src/cli/errors';

const ROOT = path.resolve(__dirname, '../..');

function mlp(): Graph {
  const b = new GraphBuilder('mlp');
  const x = b.input('x', { dtype: 'f32', shape: [64, 16] });
  const w1 = b.within('mlp', () => b.param('mlp.up.weight', { dtype: 'f32', shape: [32, 16] }));
  const w2 = b.within('mlp', () => b.param('mlp.down.weight', { dtype: 'f32', shape: [16, 32] }));
  const h = b.within('mlp', () => b.op('matmul', [x, w1], { transpose_b: true }));
  const y = b.within('mlp', () => b.op('matmul', [b.op('tanh', [h]), w2], { transpose_b: true }));
  return b.build({ outputs: [{ name: 'y', node: y }], taps: { mlp: y } });
}

/** Run the CLI in process; returns exit code and what it printed. */
async function cli(args: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const so = jest.spyOn(process.stdout, 'write').mockImplementation((s: string | Uint8Array) => ((out += String(s)), true));
  const se = jest.spyOn(process.stderr, 'write').mockImplementation((s: string | Uint8Array) => ((err += String(s)), true));
  try {
    // The same wiring as src/cli/main.ts (which reads package.json relative to dist/).
    const program = new Command('lapidary').exitOverride();
    for (const register of commands) register(program);
    for (const c of program.commands) c.exitOverride();
    try {
      await program.parseAsync(['node', 'lapidary', ...args]);
      return { code: 0, out, err };
    } catch (e) {
      if (e instanceof CommanderError) return { code: e.exitCode, out, err };
      if (e instanceof UserError) return { code: e.exitCode, out, err: err + (e.formatted ?? `lapidary: error: ${e.message}\n`) };
      throw e;
    }
  } finally {
    so.mockRestore();
    se.mockRestore();
  }
}

const TINY = ['gemma2.model', '--config', 'tests/fixtures/gemma2-tiny/config.json', '--batch', '8', '--seq', '12'];

describe('memory accounting and step time', () => {
  const m = makeMesh(parseTopology(getChip('v5p'), '2x2x2'), 'data=8');
  const s = parseStrategy('fsdp', m);

  test('FSDP training state per chip: bf16 weights, bf16 grads, fp32 master + Adam m, v — all divided by the data axis', () => {
    const r = evaluateAnalytic(mlp(), { chip: 'v5p', mode: 'train', precision: 'mixed' }, { batch: 64, seq: 1 }, m, s);
    const local = (32 * 16 + 16 * 32) / 8;
    expect(r.memory.parameters).toBe(local * 2);
    expect(r.memory.gradients).toBe(local * 2);
    expect(r.memory.optimizer_state).toBe(local * 12);
    const dp = evaluateAnalytic(mlp(), { chip: 'v5p', mode: 'train', precision: 'bf16' }, { batch: 64, seq: 1 }, m, parseStrategy('dp', m));
    expect(dp.memory.parameters).toBe(1024 * 2);
    expect(dp.memory.optimizer_state).toBe(1024 * 8);
  });

  test('the analytic cross-check: a training step costs 3x the forward per op (save-all), 4x with layer-input remat, plus the optimizer update', () => {
    const fwd = evaluateOn(mlp(), { chip: 'v5p', mode: 'forward' }, { batch: 64, seq: 1 }, m, s);
    const opt = ((1024 / 8) * 16 * 2) / getChip('v5p').hbmBandwidth;
    const t3 = evaluateAnalytic(mlp(), { chip: 'v5p', mode: 'train', remat: 'save-all' }, { batch: 64, seq: 1 }, m, s);
    const t4 = evaluateAnalytic(mlp(), { chip: 'v5p', mode: 'train', remat: 'layer-inputs' }, { batch: 64, seq: 1 }, m, s);
    expect(t3.compute_s).toBeCloseTo(3 * fwd.compute_s + opt, 15);
    expect(t4.compute_s).toBeCloseTo(4 * fwd.compute_s + opt, 15);
    expect(t3.model_flops_per_step).toBe(3 * fwd.model_flops_per_step);
    expect(fwd.model_flops_per_step).toBe(2 * 64 * 32 * 16 * 2);
  });
});

describe('lapidary cost / compile --target tpu', () => {
  test('cost --json reports the required fields', async () => {
    const r = await cli(['cost', ...TINY, '--chip', 'v5e', '--topology', '2x4', '--mesh', 'data=2,model=4', '--mode', 'train', '--tokens', '1e9', '--json']);
    expect(r.err).toBe('');
    expect(r.code).toBe(0);
    const j = JSON.parse(r.out);
    for (const k of ['step_time_s', 'mfu', 'tokens_per_s_per_chip', 'memory_per_chip_bytes', 'fits']) expect(j).toHaveProperty(k);
    expect(j.fits).toBe(true);
    expect(j.strategy).toBe('fsdp+tp');
    expect(j.days[0].tokens).toBe(1e9);
    expect(j.collectives.some((c: { kind: string; axes: string }) => c.kind === 'all-reduce' && c.axes === 'model')).toBe(true);
  });

  test('--batch / --seq that the model does not use (fixed-size inputs) are errors, not silently wrong token counts', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lapidary-fixed-'));
    const file = path.join(dir, 'fixed.model');
    const src = fs.readFileSync(path.join(ROOT, 'examples/gpt2.model'), 'utf8');
    fs.writeFileSync(file, src.replace(/input_ids: i32\[batch, seq\]/, 'input_ids: i32[4, seq]'));
    const r = await cli(['cost', file, '--hparam', 'n_layers=2', '--chip', 'v5e', '--topology', '2x2', '--mesh', 'data=2,model=2', '--batch', '64', '--seq', '8', '--mode', 'train']);
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/option --batch: dim 'batch' is bound to 64, but no shape of the model depends on it/);
    expect(r.err).not.toMatch(/--seq/);
    fs.rmSync(dir, { recursive: true, force: true });
  });

  test('the readable report marks the layers it leaves out where they are (between the first and the last)', async () => {
    const r = await cli(['cost', ...TINY, '--chip', 'v5e', '--topology', '2x4', '--mesh', 'data=2,model=4', '--mode', 'train']);
    expect(r.code).toBe(0);
    const table = r.out.slice(r.out.indexOf('per layer'), r.out.indexOf('collectives (per step)')).trim().split('\n').slice(2);
    const more = table.findIndex((l) => l.includes('more (--json for all)'));
    expect(more).toBe(table.length - 3); // four rows, the marker, the last two
    expect(table[table.length - 1]).toMatch(/^\s+\S+/);
  });

  test.each([
    [['--chip', 'v9', '--topology', '2x4', '--mesh', 'data=8'], /unknown chip 'v9'/],
    [['--chip', 'v5e', '--topology', '2x4', '--mesh', 'data=3'], /--mesh data=3: the axes multiply to 3 devices, but the topology has 8 chips/],
    [['--chip', 'v5e', '--topology', '4x4x4x4', '--mesh', 'data=8'], /--topology 4x4x4x4/],
    [['--chip', 'v5e', '--topology', '2x4', '--mesh', 'data=8', '--strategy', 'tp'], /tensor parallelism needs a mesh axis/],
    [['--chip', 'v5e', '--topology', '2x4', '--mesh', 'data=8', '--strategy', ''], /--strategy: '' has an empty part/],
    [['--chip', 'v5e', '--topology', '2x4'], /option --mesh is required/],
    [['--chip', 'v4', '--topology', '3x5x7', '--mesh', 'data=105'], /--topology 3x5x7: 3x5x7 is not a v4 slice shape \(a 3D slice is 2x2x1, 2x2x2, 2x2x4, 2x4x4, or every side a multiple of 4/],
    [['--chip', 'v5e', '--topology', '3x4', '--mesh', 'data=12'], /--topology 3x4: 3x4 is not a v5e slice shape/],
    [['--chip', 'v5p', '--chips', '96', '--mesh', 'data=96'], /96 v5p chips do not form a slice/],
    [['--chip', 'v5e', '--chips', '8', '--topology', '2x2', '--mesh', 'auto'], /--chips 8 and --topology 2x2 \(4 chips\) disagree/],
    [['--chip', 'v5e', '--topology', '2x4', '--mesh', 'data=8,'], /--mesh data=8,: an empty axis between commas/],
    [['--chip', 'v5e', '--topology', '2x4', '--mesh', 'data=8', '--mode', 'decode', '--remat', 'save-all'], /option --remat only applies to --mode train \(this is --mode decode\)/],
  ])('bad options are clean errors: %j', async (extra, msg) => {
    const r = await cli(['cost', ...TINY, ...(extra as string[])]);
    expect(r.code).toBe(1);
    expect(r.err).toMatch(msg as RegExp);
    expect(r.err).not.toMatch(/\n\s+at .+:\d+:\d+/);
  });

  test('a batch that does not split over the data axes is an error naming both (the partitioner would leave it unsplit)', async () => {
    const args = ['cost', 'gemma2.model', '--config', 'tests/fixtures/gemma2-tiny/config.json', '--seq', '12', '--chip', 'v5e', '--topology', '2x4', '--mesh', 'data=4,model=2'];
    const r = await cli([...args, '--batch', '6']);
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/--batch 6 does not split over the data axes \(data=4\): each of the 4 data shards needs whole sequences; use a multiple of 4 \(e.g. --batch 8\)/);
    expect((await cli([...args, '--batch', '8'])).code).toBe(0);
    // --mesh auto keeps searching: the meshes whose data axis does not divide the batch are listed as rejected.
    const a = await cli(['cost', 'gemma2.model', '--config', 'tests/fixtures/gemma2-tiny/config.json', '--seq', '12', '--chip', 'v5e', '--topology', '2x4', '--mesh', 'auto', '--batch', '2', '--json']);
    expect(a.code).toBe(0);
    const plans = JSON.parse(a.out);
    const list = Array.isArray(plans) ? plans : plans.plans ?? plans.ranked;
    expect(list.some((p: { mesh: string; rejected?: string }) => /data=8/.test(p.mesh) && /does not split over the data axes/.test(p.rejected ?? ''))).toBe(true);
    expect(list.some((p: { rejected?: string }) => !p.rejected)).toBe(true);
  });

  test('--mesh auto where nothing fits prints every rejection and exits 1', async () => {
    const r = await cli(['cost', 'gemma2.model', '--variant', '27b', '--chip', 'v5e', '--topology', '2x2', '--mesh', 'auto', '--mode', 'train', '--batch', '4', '--seq', '8192']);
    expect(r.code).toBe(1);
    expect(r.out).toMatch(/rejected: needs .* GB per chip but a v5e has 16\.0 GB/);
    expect(r.err).toMatch(/--mesh auto: none of the \d+ plans fits/);
  });

  test('missing --batch is named', async () => {
    const r = await cli(['cost', 'gemma2.model', '--config', 'tests/fixtures/gemma2-tiny/config.json', '--seq', '12', '--chip', 'v5e', '--topology', '2x4', '--mesh', 'data=8']);
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/--batch is required/);
  });

  test('compile --target tpu writes the four programs and cost.json, byte for byte the same each time', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lapidary-tpu-'));
    const args = ['compile', ...TINY, '--target', 'tpu', '--chip', 'v5e', '--topology', '2x4', '--mesh', 'data=2,model=4', '-o'];
    const a = await cli([...args, path.join(dir, 'a')]);
    expect(a.err).toBe('');
    expect(a.code).toBe(0);
    await cli([...args, path.join(dir, 'b')]);
    for (const f of ['program.mlir', 'program.hlo', 'partitioned.mlir', 'partitioned.hlo', 'cost.json']) {
      const x = fs.readFileSync(path.join(dir, 'a', f), 'utf8');
      expect(x.length).toBeGreaterThan(100);
      expect(fs.readFileSync(path.join(dir, 'b', f), 'utf8')).toBe(x);
    }
    const whole = fs.readFileSync(path.join(dir, 'a', 'program.mlir'), 'utf8');
    expect(whole).toMatch(/jax.arg_info = "model.layers.0.self_attn.q_proj.weight", mhlo.sharding = "\{devices=/);
    fs.rmSync(dir, { recursive: true, force: true });
  });

  test('Gemma 2 27B with pure data parallelism on v5e does not fit, and says why; under its paper plan on v5p it fits', async () => {
    const big = ['gemma2.model', '--variant', '27b', '--mode', 'train', '--seq', '8192', '--json'];
    const dp = JSON.parse((await cli(['cost', ...big, '--batch', '256', '--chip', 'v5e', '--topology', '16x16', '--mesh', 'data=256', '--strategy', 'dp'])).out);
    expect(dp.fits).toBe(false);
    expect(dp.why).toMatch(/needs .* GB per chip but a v5e has 16.0 GB.*replicated on every chip under 'dp'; try fsdp/);
    const paper = JSON.parse((await cli(['cost', ...big, '--batch', '768', '--chip', 'v5p', '--topology', '8x24x32', '--mesh', 'data=768,model=8', '--tokens', '13e12'])).out);
    expect(paper.fits).toBe(true);
    expect(paper.mfu).toBeGreaterThan(0.2);
    expect(paper.mfu).toBeLessThan(0.75);
    expect(paper.days[0].days).toBeGreaterThan(5);
  });

  test('an axis of one device splits nothing: no collectives over one-device groups in the plan or the program', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lapidary-tpu-'));
    const r = await cli(['compile', ...TINY, '--target', 'tpu', '--chip', 'v5e', '--topology', '1x1', '--mesh', 'data=1', '--mode', 'train', '-o', path.join(dir, 'one')]);
    expect(r.code).toBe(0);
    const prog = fs.readFileSync(path.join(dir, 'one', 'partitioned.mlir'), 'utf8');
    expect(prog).not.toMatch(/all_gather|all_reduce|reduce_scatter/);
    expect(JSON.parse(fs.readFileSync(path.join(dir, 'one', 'cost.json'), 'utf8')).collectives).toEqual([]);
    fs.rmSync(dir, { recursive: true, force: true });
  });

  test('decode at a long context is bound by reading the KV cache and the weights once (attention bytes were 2-3x that)', async () => {
    const r = JSON.parse((await cli(['cost', 'gemma2.model', '--variant', '2b', '--chip', 'h100', '--chips', '1', '--mesh', 'data=1', '--mode', 'decode', '--batch', '64', '--seq', '8192', '--json'])).out);
    const once = (r.memory.kv_cache + r.memory.parameters) / 3.0e12;
    expect(r.bound).toBe('memory');
    expect(r.step_time_s / once).toBeGreaterThan(1);
    expect(r.step_time_s / once).toBeLessThan(1.15);
    expect(r.per_op_class.fused_attention.bytes / r.memory.kv_cache).toBeCloseTo(1, 1);
  });

  test('9B on data=1024: FSDP cannot split d_model 3584, the state is counted as laid out (does not fit) and the note names the way out', async () => {
    const nine = ['gemma2.model', '--variant', '9b', '--mode', 'train', '--seq', '8192', '--json', '--batch', '1024', '--chip', 'v4', '--topology', '8x16x32'];
    const flat = JSON.parse((await cli(['cost', ...nine, '--mesh', 'data=1024,model=4'])).out);
    expect(flat.fits).toBe(false);
    // gradients follow their parameters' layout (the emitted program's), not a flat ZeRO shard
    expect(flat.memory.gradients).toBeCloseTo(flat.memory.parameters, -3);
    expect(flat.note).toMatch(/FSDP could not split \d+ parameters over data=1024 \(no dim divides\), e\.g\. .*a mesh with data=512 and a replica=2 axis/);
    const split = JSON.parse((await cli(['cost', ...nine, '--mesh', 'replica=2,data=512,model=4'])).out);
    expect(split.fits).toBe(true);
    expect(split.note).toBeUndefined();
    expect(split.memory.parameters * 100).toBeLessThan(flat.memory.parameters);
  });
});
