import { GraphBuilder, Graph, nodeCost, getNode } from '../../src/ir';
import {
  getChip, parseTopology, makeMesh, parseStrategy, partitionForCost, emitPrograms, emitWholeProgram, CostRecorder, fusedBytes,
  StableHloPrinter, HloPrinter, reshapeGroups,
} from '../../src/backends/tpu';

/** x[8,16] → Linear(16→32) → tanh → Linear(32→16): the Megatron MLP pattern. */
function mlp(): Graph {
  const b = new GraphBuilder('mlp');
  const x = b.input('x', { dtype: 'f32', shape: [8, 16] });
  const w1 = b.within('mlp', () => b.param('mlp.up.weight', { dtype: 'f32', shape: [32, 16] }));
  const w2 = b.within('mlp', () => b.param('mlp.down.weight', { dtype: 'f32', shape: [16, 32] }));
  const h = b.within('mlp', () => b.op('matmul', [x, w1], { transpose_b: true }));
  const a = b.within('mlp', () => b.op('tanh', [h]));
  const y = b.within('mlp', () => b.op('matmul', [a, w2], { transpose_b: true }));
  return b.build({ outputs: [{ name: 'y', node: y }], taps: { mlp: y } });
}

const mesh = (spec: string, topo = '2x4') => makeMesh(parseTopology(getChip('v5e'), topo), spec);

describe('partition specs and collective insertion', () => {
  test('tensor parallel (Megatron): column-split up, row-split down, one all-reduce over model of the output', () => {
    const m = mesh('data=2,model=4');
    const s = parseStrategy('dp+tp', m);
    const { result, events } = partitionForCost(mlp(), m, s.policy, 4);
    expect(result.paramSpecs.get('mlp.up.weight')).toEqual([['model'], []]);
    expect(result.paramSpecs.get('mlp.down.weight')).toEqual([[], ['model']]);
    expect(result.inputSpecs.get('x')).toEqual([['data'], []]);
    expect(events.map((e) => [e.kind, e.axes])).toEqual([['all-reduce', ['model']]]);
    expect(events[0].bytes).toBe(4 * 16 * 4); // the local [4,16] f32 output
    expect(result.outputs[0].spec).toEqual([['data'], []]);
  });

  test('FSDP: weights sharded over data and all-gathered whole before each use; no activation collectives', () => {
    const m = mesh('data=8');
    const { result, events } = partitionForCost(mlp(), m, parseStrategy('fsdp', m).policy, 4);
    expect(result.paramSpecs.get('mlp.up.weight')).toEqual([['data'], []]);
    expect(events.map((e) => [e.kind, e.axes, e.param, e.bytes])).toEqual([
      ['all-gather', ['data'], 'mlp.up.weight', 32 * 16 * 4],
      ['all-gather', ['data'], 'mlp.down.weight', 16 * 32 * 4],
    ]);
  });

  test('pure data parallelism: replicated weights, no collectives in the forward', () => {
    const m = mesh('data=8');
    const { result, events } = partitionForCost(mlp(), m, parseStrategy('dp', m).policy, 4);
    expect(result.paramSpecs.get('mlp.up.weight')).toEqual([[], []]);
    expect(events).toEqual([]);
  });

  test('strategies that do not match the mesh are errors', () => {
    expect(() => parseStrategy('fsdp', mesh('data=2,model=4'))).toThrow(/leaves mesh axis 'model' \(4\) unused; add \+tp/);
    expect(() => parseStrategy('tp', mesh('data=8'))).toThrow(/needs a mesh axis named model/);
    expect(() => parseStrategy('dp+fsdp', mesh('data=8'))).toThrow(/exclude each other/);
    expect(() => parseStrategy('pp', mesh('data=8'))).toThrow(/unknown part 'pp'/);
  });

  test('emitted per-device program: local shapes, collectives with replica groups and channel ids; whole program: shardings', () => {
    const m = mesh('data=2,model=4');
    const p = emitPrograms(mlp(), m, parseStrategy('fsdp+tp', m).policy);
    // up: [32 over model, 16 over data] → local [8, 8]; x: [8 over data, 16] → [4, 16]
    expect(p.partitionedMlir).toMatch(/%arg0: tensor<4x16xf32> \{jax.arg_info = "x", mhlo.sharding = "\{manual\}"\}/);
    expect(p.partitionedMlir).toMatch(/%arg1: tensor<8x8xf32> \{jax.arg_info = "mlp.up.weight"/);
    expect(p.partitionedMlir).toMatch(/"stablehlo.all_gather"\(%arg1\) \{all_gather_dim = 1 : i64, replica_groups = #groups\d, channel_handle = #stablehlo.channel_handle<handle = 1, type = 1>, use_global_device_ids\}/);
    expect(p.partitionedMlir).toMatch(/^#groups\d = dense<\[\[0, 4\], \[1, 5\], \[2, 6\], \[3, 7\]\]> : tensor<4x2xi64>$/m);
    expect(p.partitionedMlir).toMatch(/^#groups\d = dense<\[\[0, 1, 2, 3\], \[4, 5, 6, 7\]\]> : tensor<2x4xi64>$/m);
    expect(p.partitionedMlir).toMatch(/"stablehlo.all_reduce"/);
    expect(p.partitionedHlo).toMatch(/all-gather\(p1\), channel_id=1, replica_groups=\[4,2\]<=\[2,4\]T\(1,0\), use_global_device_ids=true, dimensions=\{1\}/);
    expect(p.partitionedHlo).toMatch(/all-reduce\(v\d+\), channel_id=\d+, replica_groups=\[2,4\]<=\[8\], use_global_device_ids=true, to_apply=add_f32/);
    expect(p.wholeMlir).toMatch(/%arg1: tensor<32x16xf32> \{jax.arg_info = "mlp.up.weight", mhlo.sharding = "\{devices=\[4,2\]<=\[2,4\]T\(1,0\)\}"\}/);
    expect(p.wholeMlir).toMatch(/mhlo.num_partitions = 8 : i32/);
    expect(p.wholeHlo).toMatch(/p1 = f32\[32,16\] parameter\(1\), sharding=\{devices=\[4,2\]<=\[2,4\]T\(1,0\)\}, metadata=\{op_name="mlp.up.weight"\}/);
    // byte-for-byte deterministic
    const q = emitPrograms(mlp(), m, parseStrategy('fsdp+tp', m).policy);
    expect(q.partitionedMlir).toBe(p.partitionedMlir);
    expect(q.wholeHlo).toBe(p.wholeHlo);
  });

  test('reshape groups pair the dims whose products match', () => {
    expect(reshapeGroups([2, 12, 64], [2, 12, 4, 16])).toEqual([[[0], [0]], [[1], [1]], [[2], [2, 3]]]);
    expect(reshapeGroups([2, 4, 16], [2, 64])).toEqual([[[0], [0]], [[1, 2], [1]]]);
    expect(reshapeGroups([6, 4], [4, 6])).toEqual([[[0, 1], [0, 1]]]);
  });
});

describe('cost conventions', () => {
  test('the recorder counts FLOPs and transcendentals as the IR cost (XLA HloCostAnalysis rules): dot = 2·M·N·K', () => {
    const g = mlp();
    const rec = new CostRecorder();
    emitWholeProgram(g, rec, { env: {} });
    const flops = rec.instrs.toArray().reduce((a, i) => a + i.mxuFlops + i.vpuFlops, 0);
    const tr = rec.instrs.toArray().reduce((a, i) => a + i.transcendentals, 0);
    expect(rec.instrs.toArray().reduce((a, i) => a + i.mxuFlops, 0)).toBe(2 * 8 * 32 * 16 + 2 * 8 * 16 * 32);
    expect(tr).toBe(8 * 32);
    let irFlops = 0;
    let irTr = 0;
    for (const n of g.nodes) {
      const c = nodeCost(n, n.inputs.map((i) => getNode(g, i).type as never), n.type as never);
      irFlops += c.flops;
      irTr += c.transcendentals;
    }
    expect(flops).toBe(irFlops);
    expect(tr).toBe(irTr);
  });

  test('a bf16 plan counts what the program keeps in f32 at 4 bytes: the optimizer\'s values, index tables; the rest at 2', () => {
    const b = new GraphBuilder('opt');
    const x = b.input('x', { dtype: 'f32', shape: [8, 16] });
    const pos = b.input('pos', { dtype: 'i32', shape: [16] });
    const angle = b.op('mul', [b.op('cast', [pos], { dtype: 'f32' }), b.constant(0.01, 'f32')]);
    const y = b.op('mul', [x, b.op('sin', [angle])]);
    const u = b.within('optimizer', () => b.op('mul', [y, y]));
    const g = b.build({ outputs: [{ name: 'u', node: u }] });
    const m = mesh('data=8', '2x4');
    const { recorder } = partitionForCost(g, m, parseStrategy('dp', m).policy, 2);
    const out = (id: number) => recorder.instrs.toArray().filter((i) => i.node === id && i.cls === 'elementwise').map((i) => i.outBytes);
    // per device: x and y are [1, 16] (batch over data=8); the sine table [16] is replicated
    expect(new Set(out(y))).toEqual(new Set([16 * 2])); // the product, and the table's convert to bf16
    expect(new Set(out(u))).toEqual(new Set([16 * 4])); // y's convert to f32, and the product
    expect(out(angle)).toEqual([16 * 4]);
  });

  test('fusion-aware bytes: an elementwise chain into a reduction reads its input once and writes only the result', () => {
    const b = new GraphBuilder('chain');
    const x = b.input('x', { dtype: 'f32', shape: [4, 8] });
    const e = b.op('exp', [x]);
    const m = b.op('mul', [e, b.constant(2)]);
    const r = b.op('reduce', [m], { kind: 'sum', axes: [1] });
    const g = b.build({ outputs: [{ name: 'r', node: r }] });
    const rec = new CostRecorder();
    const outs = emitWholeProgram(g, rec, { env: {} });
    const bytes = fusedBytes(rec.instrs, outs.map((o) => Number(o.value.ref.slice(2))));
    expect(bytes.reduce((a, c) => a + c, 0)).toBe(4 * 8 * 4 + 4 * 4);
  });

  test('printers emit well-formed modules (one func, reduce regions, ROOT, HF names on parameters)', () => {
    const g = mlp();
    const s = new StableHloPrinter({ name: 'mlp', numPartitions: 1 });
    const text = s.finish(emitWholeProgram(g, s, { env: {} }));
    expect(text.match(/func\.func public @main/g)).toHaveLength(1);
    expect((text.match(/\{/g) ?? []).length).toBe((text.match(/\}/g) ?? []).length);
    for (const line of text.split('\n').filter((l) => /^\s+%\d+ = /.test(l))) expect(line).toMatch(/^\s+%\d+ = "stablehlo\.[a-z_]+"\(.*\)( \{.*\})? : \(.*\) -> tensor<[^>]+>( loc\(".*"\))?$/);
    const h = new HloPrinter({ name: 'mlp', numPartitions: 1 });
    const hlo = h.finish(emitWholeProgram(g, h, { env: {} }));
    expect(hlo).toMatch(/^HloModule mlp, num_partitions=1\n/);
    expect(hlo).toMatch(/ENTRY main \{[\s\S]*ROOT out = f32\[8,16\] copy\(v\d+\)\n\}/);
    expect(hlo).toMatch(/p1 = f32\[32,16\] parameter\(1\), metadata=\{op_name="mlp.up.weight"\}/);
  });
});
