/**
 * The training step on the TPU backend: the real step graph (src/train) partitioned like the forward —
 * gradients reduce-scattered into their FSDP shards, Adam moments laid out like their parameters, weights
 * gathered again in the backward, residuals per chip as activation memory — emitted in one pass, and decode
 * cost from fused attention.
 */
import {
  getChip, parseTopology, makeMesh, parseStrategy, compileTpu, evaluateAnalytic, evaluateOn, sourceNodes, buildTrainingStep, f32NodesOf,
} from '../../src/backends/tpu';
import { runPipeline, resolvePipeline } from '../../src/passes';
import { isFloat, BYTES } from '../../src/ir';
import { TINY_CONFIG as config, tinyGemma2 } from './helpers';

const tiny = (batch: number, seq: number) => tinyGemma2(batch, seq);

const g = tiny(8, 12);
const dims = { batch: 8, seq: 12 };
const mesh = makeMesh(parseTopology(getChip('v5e'), '2x4'), 'data=2,model=4');
const strategy = parseStrategy('fsdp+tp', mesh);
const train = compileTpu(g, mesh, strategy, { chip: 'v5e', mode: 'train', remat: 'layer-inputs' }, dims, { emit: true });

describe('the training step, partitioned', () => {
  test('the plan is costed from the step graph, with the analytic estimate beside it', () => {
    const p = train.plan;
    expect(p.train_graph!.nodes).toBe(train.program.nodes.length);
    expect(train.program.nodes.length).toBeGreaterThan(3 * g.nodes.length);
    expect(p.settings.train_cost).toMatch(/^partitioned training-step graph/);
    // The cross-check reuses the forward part of the step's partition: the same as partitioning the forward alone.
    const alone = evaluateAnalytic(g, { chip: 'v5e', mode: 'train', remat: 'layer-inputs' }, dims, mesh, strategy);
    expect(p.analytic!.step_time_s).toBeGreaterThan(0.99 * alone.step_time_s);
    expect(p.analytic!.step_time_s).toBeLessThan(1.01 * alone.step_time_s);
    expect(p.analytic!.mfu).toBeLessThan(1);
    // The step's own matmul FLOPs per chip exceed the forward's (backward + recompute) but stay within 5x.
    const fwd = evaluateAnalytic(g, { chip: 'v5e', mode: 'forward' }, dims, mesh, strategy);
    expect(p.hardware_flops_per_chip).toBeGreaterThan(3 * fwd.hardware_flops_per_chip);
    expect(p.hardware_flops_per_chip).toBeLessThan(5 * fwd.hardware_flops_per_chip);
  });

  test('gradients are reduce-scattered into their FSDP shards; weights are gathered in the forward and again in the backward', () => {
    const fwd = evaluateAnalytic(g, { chip: 'v5e', mode: 'forward' }, dims, mesh, strategy);
    const count = (r: typeof fwd, kind: string, axes: string, weights: boolean) =>
      r.collectives.filter((c) => c.kind === kind && c.axes === axes && c.weights === weights).reduce((a, c) => a + c.count, 0);
    const gathers = count(fwd, 'all-gather', 'data', true);
    expect(gathers).toBeGreaterThan(0);
    expect(count(train.plan, 'all-gather', 'data', true)).toBe(2 * gathers);
    // One reduce-scatter over data per FSDP-sharded parameter (no all-reduce of a whole gradient).
    const sharded = Object.values(train.plan.param_specs).filter((s) => s.includes('data')).length;
    expect(count(train.plan, 'reduce-scatter', 'data', true)).toBe(sharded);
    expect(train.programs!.partitionedMlir).toMatch(/"stablehlo.reduce_scatter"/);
    expect(train.programs!.partitionedHlo).toMatch(/ reduce-scatter\(/);
  });

  test('Adam moments are laid out like their parameters, and every next value leaves in its input layout', () => {
    const r = train.partition;
    let n = 0;
    for (const [name, spec] of r.paramSpecs) {
      expect(r.inputSpecs.get(`adam.m.${name}`)).toEqual(spec);
      expect(r.inputSpecs.get(`adam.v.${name}`)).toEqual(spec);
      expect(r.inputSpecs.get(`master.${name}`)).toEqual(spec); // --precision mixed (the default): fp32 master weights
      n++;
    }
    expect(n).toBe(g.nodes.filter((x) => x.op === 'param').length);
    for (const o of r.outputs) {
      const s = r.paramSpecs.get(o.name) ?? r.inputSpecs.get(o.name);
      if (s) expect(o.spec).toEqual(s);
    }
  });

  test('the per-device program lists every argument in graph order, and emission is deterministic', () => {
    const names = [...train.programs!.partitionedMlir.matchAll(/jax.arg_info = "([^"]+)"/g)].map((m) => m[1]);
    expect(names).toEqual(sourceNodes(train.program).map((n) => String(n.attrs.name)));
    const hloParams = [...train.programs!.partitionedHlo.matchAll(/^ {2}p\d+ = \S+ parameter\((\d+)\)/gm)].map((m) => Number(m[1]));
    expect(hloParams).toEqual(names.map((_, i) => i));
    const again = compileTpu(g, mesh, strategy, { chip: 'v5e', mode: 'train', remat: 'layer-inputs' }, dims, { emit: true });
    expect(again.programs!.partitionedMlir).toBe(train.programs!.partitionedMlir);
    expect(again.programs!.wholeHlo).toBe(train.programs!.wholeHlo);
    expect(JSON.stringify(again.plan)).toBe(JSON.stringify(train.plan));
  });

  test('bf16 programs keep float scalars in f32 (step counter, lr, loss, grad norm), and every instruction\'s operand dtypes agree', () => {
    const bf = compileTpu(g, mesh, strategy, { chip: 'v5e', mode: 'train', remat: 'layer-inputs' }, dims, { emit: true, floatDtype: 'bf16' }).programs!;
    for (const text of [bf.wholeMlir, bf.partitionedMlir]) {
      expect(text).toMatch(/tensor<f32> \{jax\.arg_info = "step"/); // a bf16 step counts exactly only to 256
      expect(text).toMatch(/tensor<f32> \{jax\.arg_info = "lr"/);
      expect(text).toMatch(/tensor<f32> \{jax\.result_info = "loss"/);
      expect(text).toMatch(/tensor<[0-9x]*bf16> \{jax\.arg_info = "model\.layers\.0\.mlp\.up_proj\.weight"/);
      // Elementwise instructions take one element type (XLA rejects anything else): f32 scalars meet bf16 tensors
      // through converts.
      const elem = (t: string) => /x?([a-z]+\d*)>$/.exec(t.trim())![1];
      let checked = 0;
      for (const m of text.matchAll(/"stablehlo\.(add|subtract|multiply|divide|maximum|minimum|power|and|or)"\([^)]*\) : \(([^)]*)\) -> (tensor<[^>]*>)/g)) {
        const types = m[2].split(/,\s*(?=tensor)/).map(elem);
        expect([m[1], ...types, elem(m[3])].join(' ')).toBe([m[1], ...types.map(() => types[0]), types[0]].join(' '));
        checked++;
      }
      // Repeated layers are printed once, as functions: every distinct instruction is still checked.
      expect(checked).toBeGreaterThan(500);
    }
  });

  test('mixed precision: bf16 weights, activations and gradients; the optimizer, its moments and fp32 master weights in f32', () => {
    const opts = { chip: 'v5e', mode: 'train' as const, remat: 'layer-inputs' as const };
    const mixed = compileTpu(g, mesh, strategy, opts, dims, { emit: true, floatDtype: 'bf16' });
    const w = 'model.layers.0.mlp.up_proj.weight';
    const dtypeOf = (text: string, kind: 'arg' | 'result', name: string) =>
      new RegExp(`tensor<[0-9x]*?x?([a-z]+[0-9]*)> \\{jax\\.${kind}_info = "${name.replace(/\./g, '\\.')}"`).exec(text)?.[1];
    for (const text of [mixed.programs!.wholeMlir, mixed.programs!.partitionedMlir]) {
      expect([dtypeOf(text, 'arg', w), dtypeOf(text, 'arg', `master.${w}`), dtypeOf(text, 'arg', `adam.m.${w}`), dtypeOf(text, 'arg', `adam.v.${w}`)]).toEqual(['bf16', 'f32', 'f32', 'f32']);
      expect([dtypeOf(text, 'result', w), dtypeOf(text, 'result', `master.${w}`), dtypeOf(text, 'result', `adam.m.${w}`), dtypeOf(text, 'result', `adam.v.${w}`)]).toEqual(['bf16', 'f32', 'f32', 'f32']);
      // The update's arithmetic is f32 (no bf16 sqrt of the second moment).
      expect(text).toMatch(/stablehlo\.sqrt"?\(?[^\n]*tensor<[0-9x]+f32>/);
      expect(text).not.toMatch(/stablehlo\.sqrt"?\(?[^\n]*tensor<[0-9x]+bf16>/);
    }
    // Gradients are summed in bf16, into their shards, before the optimizer converts them: every reduce-scatter is
    // bf16, the weights' collectives are those of the same step emitted all in f32, and nothing is all-reduced in
    // full that was reduce-scattered there (all-reduced bytes: activations and scalars, in bf16 here).
    const scatters = [...mixed.programs!.partitionedMlir.matchAll(/"stablehlo\.reduce_scatter"[\s\S]*?\) -> tensor<[0-9x]*?x?([a-z]+[0-9]*)>/g)].map((m) => m[1]);
    expect(scatters.length).toBeGreaterThan(0);
    expect(new Set(scatters)).toEqual(new Set(['bf16']));
    const key = (p: typeof train.plan) => p.collectives.filter((c) => c.weights).map((c) => `${c.kind} ${c.axes} ${c.count}`).sort();
    expect(key(mixed.plan)).toEqual(key(train.plan));
    const allReduced = (p: typeof train.plan) => p.collectives.filter((c) => c.kind === 'all-reduce').reduce((a, c) => a + c.bytes, 0);
    expect(allReduced(mixed.plan)).toBeLessThan(allReduced(train.plan));
    // The loss's one-hot gradient ([tokens, vocab], exact in bf16) is not made in f32, though it comes from the labels.
    for (const text of [mixed.programs!.wholeMlir, mixed.programs!.partitionedMlir]) expect(text).not.toMatch(/tensor<(?:8x12|96|4x12|48)x(?:512|128)xf32>/);
    // --precision bf16: no master weights; the moments and the update stay f32, the next weights are bf16.
    const bf = compileTpu(g, mesh, strategy, { ...opts, precision: 'bf16' }, dims, { emit: true, floatDtype: 'bf16' });
    const text = bf.programs!.partitionedMlir;
    expect(text).not.toMatch(/arg_info = "master\./);
    expect([dtypeOf(text, 'arg', w), dtypeOf(text, 'arg', `adam.m.${w}`), dtypeOf(text, 'result', w), dtypeOf(text, 'result', `adam.v.${w}`)]).toEqual(['bf16', 'f32', 'bf16', 'f32']);
    expect(bf.plan.memory.optimizer_state).toBeLessThan(mixed.plan.memory.optimizer_state);
  });

  test('activation memory is the remat policy\'s residuals at their per-chip size', () => {
    const saved = (remat: 'save-all' | 'matmul-outputs' | 'layer-inputs') => {
      const step = buildTrainingStep(g, remat);
      const r = evaluateOn(g, { chip: 'v5e', mode: 'train', remat }, dims, mesh, strategy, step);
      // Global bytes of the residuals (bf16 floats) equal src/train's own count (f32) scaled to 2-byte floats.
      const types = step.residuals.map((id) => step.graph.nodes.find((n) => n.id === id)!.type);
      const want = types.reduce((a, t) => a + (t.shape as number[]).reduce((x, y) => x * y, 1) * (isFloat(t.dtype) ? 2 : BYTES[t.dtype]), 0);
      expect(r.train_graph!.saved_bytes_global).toBe(want);
      if (types.every((t) => isFloat(t.dtype))) expect(r.train_graph!.saved_bytes_global * 2).toBe(step.savedBytes());
      expect(r.train_graph!.saved_bytes_per_chip).toBeLessThan(want);
      expect(r.memory.activations).toBeGreaterThanOrEqual(r.train_graph!.saved_bytes_per_chip);
      return r.train_graph!.saved_bytes_per_chip;
    };
    const all = saved('save-all');
    const dots = saved('matmul-outputs');
    const layers = saved('layer-inputs');
    expect(all).toBeGreaterThan(dots);
    expect(dots).toBeGreaterThan(layers);
  });
});

describe('bf16 programs', () => {
  test('index arithmetic stays f32: RoPE\'s angles, sines and cosines from the positions (bf16 is exact only up to 256)', () => {
    const opts = { chip: 'v5e' };
    const fwd = compileTpu(g, mesh, strategy, { ...opts, mode: 'forward' }, dims, { emit: true, floatDtype: 'bf16' }).programs!;
    const dec = compileTpu(tiny(8, 1), mesh, parseStrategy('dp+tp', mesh), { ...opts, mode: 'decode', context: 12 }, { batch: 8, seq: 1 }, { emit: true, floatDtype: 'bf16' }).programs!;
    for (const text of [fwd.wholeMlir, fwd.partitionedMlir, dec.wholeMlir, dec.partitionedMlir, train.programs!.wholeMlir]) {
      const trig = [...text.matchAll(/"stablehlo\.(?:sine|cosine)"\(%\w+\) : \(tensor<[0-9x]*?x?([a-z]+[0-9]*)>\)/g)].map((m) => m[1]);
      expect(trig.length).toBeGreaterThan(0);
      expect(new Set(trig)).toEqual(new Set(['f32']));
      // positions (and any other integer) become floats in f32, never straight in bf16
      expect(text).toMatch(/"stablehlo\.convert"\(%\w+\) : \(tensor<[0-9x]*xi32>\) -> tensor<[0-9x]*xf32>/);
      expect(text).not.toMatch(/"stablehlo\.convert"\(%\w+\) : \(tensor<[0-9x]*xi32>\) -> tensor<[0-9x]*xbf16>/);
    }
    // the activations themselves stay bf16
    expect(fwd.wholeMlir).toMatch(/tensor<8x12x64xbf16>/);
  });
});

test('a step graph whose master and next weights became one value (a pass folded the cast) is refused, not emitted in bf16', () => {
  const step = buildTrainingStep(g, 'layer-inputs').graph;
  expect(() => f32NodesOf(step)).not.toThrow();
  const folded = runPipeline(step, resolvePipeline({ passes: ['reshape-simplify'] })).graph;
  expect(() => f32NodesOf(folded)).toThrow(/master\.model\..*is the same value as a bf16 output/);
});

describe('decode on the fused graph', () => {
  test('KV cache per chip = k and v of every fused attention × the positions it keeps (window on sliding layers)', () => {
    const d = tiny(8, 1);
    const m8 = makeMesh(parseTopology(getChip('v5e'), '2x4'), 'data=8');
    const ctx = 64;
    const r = evaluateOn(d, { chip: 'v5e', mode: 'decode', context: ctx }, { batch: 8, seq: 1 }, m8, parseStrategy('fsdp', m8));
    const attn = d.nodes.filter((n) => n.op === 'fused_attention');
    expect(attn.length).toBe(config.num_hidden_layers);
    // Per layer and chip: k and v are [batch/8, kv heads, 1, head_dim] in bf16, times the cached positions.
    const per = (8 / 8) * config.num_key_value_heads * config.head_dim * 2 * 2;
    const want = attn.reduce((a, n) => a + per * (Number(n.attrs.window) > 0 ? Math.min(Number(n.attrs.window), ctx) : ctx), 0);
    expect(attn.some((n) => Number(n.attrs.window) === config.sliding_window)).toBe(true);
    expect(r.memory.kv_cache).toBe(want);
    // Attention FLOPs grow with the context on global layers only past the window.
    const r2 = evaluateOn(d, { chip: 'v5e', mode: 'decode', context: 2 * ctx }, { batch: 8, seq: 1 }, m8, parseStrategy('fsdp', m8));
    expect(r2.per_op_class.fused_attention.flops).toBeGreaterThan(1.5 * r.per_op_class.fused_attention.flops);
    expect(r2.per_op_class.fused_attention.flops).toBeLessThan(2 * r.per_op_class.fused_attention.flops);
  });
});
