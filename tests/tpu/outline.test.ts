/**
 * Layer functions (src/backends/tpu/outline.ts): repeated layers are printed once as a function and called.
 * Checked against printing without the outliner — inline, the bytes must be the same; with functions, inlining
 * every call back (a small inliner for our own StableHLO and HLO text, below) must give the same instructions in
 * the same order as the inline program, up to value names, locations and channel numbers.
 */
import * as fs from 'fs';
import * as path from 'path';
import { compileModel } from '../../grammar';
import { runPipeline, resolvePipeline } from '../../src/passes';
import {
  getChip, parseTopology, makeMesh, parseStrategy, compileTpu, emitPrograms, emitWholeProgram, partitionGraph, buildTrainingStep,
  StableHloPrinter, HloPrinter, Outliner, CostRecorder,
} from '../../src/backends/tpu';
import { defineOp, GraphBuilder, Graph } from '../../src/ir';
import { ROOT, TINY_CONFIG, tinyGemma2 } from './helpers';

/** The tiny Gemma 2 with six layers (three local, three global). */
const config = { ...TINY_CONFIG, num_hidden_layers: 6, layer_types: [0, 1, 2, 3, 4, 5].map((i) => (i % 2 ? 'full_attention' : 'sliding_attention')) };
const tiny = (batch: number, seq: number) => tinyGemma2(batch, seq, config);

const g = tiny(8, 12);
const dims = { batch: 8, seq: 12 };
const mesh = makeMesh(parseTopology(getChip('v5e'), '2x4'), 'data=2,model=4');
const strategy = parseStrategy('fsdp+tp', mesh);
const po = { chip: 'v5e', mode: 'train' as const, remat: 'layer-inputs' as const };
const withFns = compileTpu(g, mesh, strategy, po, dims, { emit: true, floatDtype: 'bf16' }).programs!;
const inline = compileTpu(g, mesh, strategy, po, dims, { emit: true, floatDtype: 'bf16', layerFunctions: false }).programs!;

/** Rename every SSA value / HLO instruction name in order of first appearance; drop locations, metadata and channel numbers. */
function canonical(text: string, kind: 'mlir' | 'hlo'): string[] {
  const names = new Map<string, string>();
  const name = (t: string) => {
    let n = names.get(t);
    if (!n) names.set(t, (n = `$${names.size}`));
    return n;
  };
  let s = text.replace(/ loc\("[^"]*"\)/g, '').replace(/, metadata=\{[^}]*\}/g, '');
  s = s.replace(/handle = \d+/g, 'handle = H').replace(/channel_id=\d+/g, 'channel_id=C');
  s = kind === 'mlir' ? s.replace(/%[A-Za-z0-9_]+(#\d+)?/g, name) : s.replace(/\b(?:c\d+_)?[vpa]\d+\b/g, name);
  return s.split('\n').filter((l) => l.trim());
}

/** The instructions of `@main` (after its signature, before its return). */
function mainOf(text: string): string {
  const start = text.indexOf(' {\n', text.indexOf('@main(')) + 3;
  return text.slice(start, text.indexOf('    "func.return"', start));
}

/** The instructions of `@main` with every `func.call` replaced by the called body (values renamed apart). */
function inlineMlir(text: string): string {
  const fns = new Map<string, { params: string[]; body: string; results: string[] }>();
  for (const m of text.matchAll(/^ {2}func\.func private @(\w+)\(([^)]*)\) -> \([^)]*\) \{\n([\s\S]*?) {4}"func\.return"\(([^)]*)\)[^\n]*\n {2}\}\n/gm)) {
    fns.set(m[1], { params: m[2].split(', ').map((p) => p.split(':')[0]), body: m[3], results: m[4].split(', ') });
  }
  const mainBody = mainOf(text);
  const subst = new Map<string, string>();
  const sub = (t: string) => t.replace(/%[A-Za-z0-9_]+(#\d+)?/g, (v) => subst.get(v) ?? v);
  let out = '';
  let k = 0;
  const lines = mainBody.split(/\n(?= {4}%| {4}")/);
  for (const line of lines) {
    const c = /^ {4}(%\d+)(?::(\d+))? = func\.call @(\w+)\(([^)]*)\)/.exec(line);
    if (!c) {
      out += sub(line) + '\n';
      continue;
    }
    const f = fns.get(c[3]);
    expect(f).toBeDefined();
    const args = c[4].split(', ').map(sub);
    expect(args.length).toBe(f!.params.length);
    const call = k++;
    const local = new Map<string, string>();
    f!.params.forEach((p, i) => local.set(p, args[i]));
    const ren = (t: string) => t.replace(/%[A-Za-z0-9_]+(#\d+)?/g, (v) => local.get(v) ?? `%c${call}_${v.slice(1)}`);
    out += ren(f!.body);
    const results = f!.results.map(ren);
    if (results.length === 1) subst.set(c[1], results[0]);
    else results.forEach((r, i) => subst.set(`${c[1]}#${i}`, r));
  }
  return out;
}

/** The same for HLO text: ENTRY's instructions with every `call` (and its get-tuple-elements) replaced by the body. */
function inlineHlo(text: string): string {
  const fns = new Map<string, { body: string[]; root: string[] }>();
  for (const m of text.matchAll(/^(\w+_fn\d+) \{\n([\s\S]*?)\n {2}ROOT \w+ = \([^)]*\) tuple\(([^)]*)\)\n\}\n/gm)) {
    fns.set(m[1], { body: m[2].split('\n'), root: m[3].split(', ') });
  }
  const entry = text.slice(text.indexOf('ENTRY main {\n') + 13);
  const subst = new Map<string, string>();
  const sub = (t: string) => t.replace(/\b[va]\d+\b|\bc\d+_\w+\b/g, (v) => subst.get(v) ?? v);
  const calls = new Map<string, string[]>();
  const out: string[] = [];
  let k = 0;
  for (const line of entry.split('\n')) {
    const c = /^ {2}(v\d+) = \([^)]*\) call\(([^)]*)\), to_apply=(\w+)/.exec(line);
    const gte = /^ {2}(v\d+) = \S+ get-tuple-element\((v\d+)\), index=(\d+)/.exec(line);
    if (c) {
      const f = fns.get(c[3]);
      expect(f).toBeDefined();
      const args = c[2].split(', ').map(sub);
      const call = k++;
      const local = new Map<string, string>();
      const params = f!.body.filter((l) => / parameter\(\d+\)$/.test(l));
      expect(params.length).toBe(args.length);
      params.forEach((l) => local.set(/^ {2}(a\d+)/.exec(l)![1], args[Number(/parameter\((\d+)\)/.exec(l)![1])]));
      const ren = (t: string) => t.replace(/\b[va]\d+\b/g, (v) => local.get(v) ?? `c${call}_${v}`);
      for (const l of f!.body) if (!/ parameter\(\d+\)$/.test(l)) out.push(ren(l));
      calls.set(c[1], f!.root.map(ren));
    } else if (gte && calls.has(gte[2])) subst.set(gte[1], calls.get(gte[2])![Number(gte[3])]);
    else out.push(sub(line));
  }
  return out.join('\n');
}


describe('layer functions', () => {
  test('repeated layers are printed once and called: forward, backward and optimizer segments; the first layer stays inline', () => {
    for (const text of [withFns.partitionedMlir, withFns.wholeMlir]) {
      const fns = [...text.matchAll(/^ {2}func\.func private @(\w+)\(/gm)].map((m) => m[1]);
      expect(fns.length).toBeGreaterThanOrEqual(3);
      expect(fns.some((f) => f.startsWith('optimizer_model_layers_fn'))).toBe(true);
      const calls = [...text.matchAll(/func\.call @(\w+)\([^)]*\)[^\n]* loc\("([^"]+)"\)/g)];
      expect(new Set(calls.map((c) => c[1]))).toEqual(new Set(fns));
      // every layer past the first is a call in the forward (the first reads the embedding, not a layer's output)
      for (let l = 1; l < 6; l++) expect(calls.some((c) => c[2] === `model.layers.${l}`)).toBe(true);
      // inside a function, locations name the layer with '*'
      expect(text).toMatch(/loc\("model\.layers\.\*\.self_attn\/[a-z_]+"\)/);
      expect(text.length).toBeLessThan(0.7 * (text === withFns.partitionedMlir ? inline.partitionedMlir : inline.wholeMlir).length);
    }
    expect(withFns.partitionedHlo).toMatch(/^ {2}v\d+ = \([^)]*\) call\([^)]*\), to_apply=model_layers_fn\d+/m);
  });

  test('modules are well formed: calls match their function\'s signature, every value is defined before use in its own function', () => {
    for (const text of [withFns.partitionedMlir, withFns.wholeMlir]) {
      const sigs = new Map<string, string>();
      for (const m of text.matchAll(/^ {2}func\.func private @(\w+)\(([^)]*)\) -> \(([^)]*)\) \{$/gm)) {
        sigs.set(m[1], `(${m[2].split(', ').map((p) => p.split(': ')[1]).join(', ')}) -> (${m[3]})`);
      }
      let calls = 0;
      for (const m of text.matchAll(/func\.call @(\w+)\([^)]*\) : (\([^)]*\) -> \([^)]*\))/g)) {
        expect(m[2]).toBe(sigs.get(m[1]));
        calls++;
      }
      expect(calls).toBeGreaterThan(10);
      // each function (main included) is isolated: it may read only its own arguments and earlier results
      for (const f of text.split(/^ {2}func\.func /m).slice(1)) {
        const defined = new Set<string>();
        for (const a of f.slice(0, f.indexOf('{\n')).matchAll(/(%arg\d+):/g)) defined.add(a[1]);
        for (const line of f.split('\n').slice(1)) {
          const lhs = /^ +(%\w+)(?::(\d+))? = /.exec(line);
          const block = [...line.matchAll(/\^bb0\(([^)]*)\)/g)].flatMap((b) => b[1].split(', ').map((x) => x.split(':')[0]));
          block.forEach((b) => defined.add(b));
          const rhs = lhs ? line.slice(lhs[0].length) : line;
          for (const u of rhs.matchAll(/%[A-Za-z0-9_]+(#\d+)?/g)) if (!block.includes(u[0])) expect([u[0], defined.has(u[0])]).toEqual([u[0], true]);
          if (lhs) {
            if (lhs[2]) for (let i = 0; i < Number(lhs[2]); i++) defined.add(`${lhs[1]}#${i}`);
            else defined.add(lhs[1]);
          }
        }
      }
    }
    // HLO: a call's tuple type is its computation's ROOT tuple, and it passes one operand per parameter
    const roots = new Map<string, { type: string; params: number }>();
    for (const m of withFns.partitionedHlo.matchAll(/^(\w+_fn\d+) \{\n([\s\S]*?)\n {2}ROOT \w+ = (\([^)]*\)) tuple/gm)) {
      roots.set(m[1], { type: m[3], params: (m[2].match(/ parameter\(\d+\)$/gm) ?? []).length });
    }
    expect(roots.size).toBeGreaterThan(2);
    for (const m of withFns.partitionedHlo.matchAll(/^ {2}v\d+ = (\([^)]*\)) call\(([^)]*)\), to_apply=(\w+)/gm)) {
      expect(m[1]).toBe(roots.get(m[3])!.type);
      expect(m[2].split(', ').length).toBe(roots.get(m[3])!.params);
    }
  });

  test('inlining every call back gives the inline program, instruction for instruction (StableHLO and HLO, whole and per-device)', () => {
    const pm = canonical(mainOf(inline.partitionedMlir), 'mlir');
    expect(pm.length).toBeGreaterThan(2000);
    expect(canonical(mainOf(withFns.partitionedMlir), 'mlir').length).toBeLessThan(pm.length / 2);
    expect(canonical(inlineMlir(withFns.partitionedMlir), 'mlir')).toEqual(pm);
    expect(canonical(inlineMlir(withFns.wholeMlir), 'mlir')).toEqual(canonical(mainOf(inline.wholeMlir), 'mlir'));
    const entry = (t: string) => t.slice(t.indexOf('ENTRY main {\n') + 13);
    const ph = canonical(entry(inline.partitionedHlo), 'hlo');
    expect(ph.length).toBeGreaterThan(2000);
    expect(canonical(entry(withFns.partitionedHlo), 'hlo').length).toBeLessThan(ph.length / 2);
    expect(canonical(inlineHlo(withFns.partitionedHlo), 'hlo')).toEqual(ph);
    expect(canonical(inlineHlo(withFns.wholeHlo), 'hlo')).toEqual(canonical(entry(inline.wholeHlo), 'hlo'));
  });

  test('the check above can fail: a function body with one attribute or operand changed is caught', () => {
    const broken = withFns.partitionedMlir.replace(/(func\.func private @model_layers_fn\d+[\s\S]*?)permutation = array<i64: ([\d, ]+)>/, (m, pre, perm: string) => `${pre}permutation = array<i64: ${perm.split(', ').reverse().join(', ')}>`);
    expect(broken).not.toBe(withFns.partitionedMlir);
    expect(canonical(inlineMlir(broken), 'mlir')).not.toEqual(canonical(mainOf(inline.partitionedMlir), 'mlir'));
    const brokenHlo = withFns.partitionedHlo.replace(/(\nmodel_layers_fn\d+ \{[\s\S]*?) multiply\((\w+), (?!\2\))(\w+)\)/, (m, pre, a: string) => `${pre} multiply(${a}, ${a})`);
    expect(brokenHlo).not.toBe(withFns.partitionedHlo);
    const entry = (t: string) => t.slice(t.indexOf('ENTRY main {\n') + 13);
    expect(canonical(inlineHlo(brokenHlo), 'hlo')).not.toEqual(canonical(entry(inline.partitionedHlo), 'hlo'));
  });

  test('without functions the outliner prints exactly what printing directly prints', () => {
    const step = buildTrainingStep(g, 'layer-inputs');
    const po2 = { env: {}, floatDtype: 'bf16' as const, backwardFrom: step.forwardEnd };
    const decided = partitionGraph(step.graph, mesh, strategy.policy, new CostRecorder(), po2);
    const fixed = new Map([...decided.inputSpecs, ...decided.paramSpecs]);
    const o = { name: 'x', numPartitions: mesh.devices, manual: true };
    const direct = new StableHloPrinter(o);
    const r1 = partitionGraph(step.graph, mesh, strategy.policy, direct, po2, fixed);
    const rec = new Outliner();
    const r2 = partitionGraph(step.graph, mesh, strategy.policy, rec, po2, fixed);
    const viaRec = new StableHloPrinter(o);
    const outs = (r: typeof r1) => r.outputs.map((x) => ({ value: x.local, name: x.name }));
    expect(viaRec.finish(rec.print(viaRec, outs(r2), { functions: false }))).toBe(direct.finish(outs(r1)));
    const h1 = new HloPrinter({ name: 'x', numPartitions: 1 });
    const w1 = emitWholeProgram(step.graph, h1, po2);
    const wrec = new Outliner();
    const w2 = emitWholeProgram(step.graph, wrec, po2);
    const h2 = new HloPrinter({ name: 'x', numPartitions: 1 });
    expect(h2.finish(wrec.print(h2, w2, { functions: false }))).toBe(h1.finish(w1));
  });

  test('emitPrograms is deterministic, functions or not, and prints calls only with functions', () => {
    const step = buildTrainingStep(g, 'layer-inputs');
    for (const layerFunctions of [true, false]) {
      const a = emitPrograms(step.graph, mesh, strategy.policy, { floatDtype: 'bf16', backwardFrom: step.forwardEnd, layerFunctions });
      const b = emitPrograms(step.graph, mesh, strategy.policy, { floatDtype: 'bf16', backwardFrom: step.forwardEnd, layerFunctions });
      expect(a.partitionedMlir).toBe(b.partitionedMlir);
      expect(a.wholeHlo).toBe(b.wholeHlo);
      expect(a.partitionedMlir.includes('func.call')).toBe(layerFunctions);
    }
  });
});

describe('layer functions on other models and modes', () => {
  const small = { vocab: 64, d_model: 32, n_layers: 4, n_heads: 4 };
  const models: [string, Record<string, number>][] = [
    ['examples/gpt2.model', { ...small, n_ctx: 16 }],
    ['examples/llama2.model', { ...small, d_ff: 48, n_kv_heads: 2, max_pos: 16 }],
    ['examples/gemma1.model', { ...small, d_ff: 48, n_kv_heads: 1, head_dim: 8, max_pos: 16 }],
    ['gemma2.model', {}],
  ];
  const cases = models.flatMap(([file, hparams]) => (['forward', 'train', 'decode'] as const).map((mode) => [file, mode, hparams] as const));
  test.each(cases)('%s, %s: inlining the calls back gives the inline programs', (file, mode, hparams) => {
    const seq = mode === 'decode' ? 1 : 12;
    const opts = file === 'gemma2.model' ? { config, dims: { batch: 8, seq } } : { hparams, dims: { batch: 8, seq } };
    const r = compileModel(fs.readFileSync(path.join(ROOT, file), 'utf8'), file, opts);
    if (!r.graph) throw new Error(JSON.stringify(r.diagnostics));
    const fg = runPipeline(r.graph, resolvePipeline({})).graph;
    const p = { chip: 'v5e', mode, remat: 'layer-inputs' as const, ...(mode === 'decode' ? { context: 12 } : {}) };
    const d = { batch: 8, seq };
    const a = compileTpu(fg, mesh, strategy, p, d, { emit: true, floatDtype: 'bf16' }).programs!;
    const b = compileTpu(fg, mesh, strategy, p, d, { emit: true, floatDtype: 'bf16', layerFunctions: false }).programs!;
    expect(a.layerFunctions!.partitioned.functions).toBeGreaterThan(0);
    expect(a.layerFunctions!.whole.functions).toBeGreaterThan(0);
    expect(canonical(inlineMlir(a.partitionedMlir), 'mlir')).toEqual(canonical(mainOf(b.partitionedMlir), 'mlir'));
    expect(canonical(inlineMlir(a.wholeMlir), 'mlir')).toEqual(canonical(mainOf(b.wholeMlir), 'mlir'));
    const entry = (t: string) => t.slice(t.indexOf('ENTRY main {\n') + 13);
    expect(canonical(inlineHlo(a.partitionedHlo), 'hlo')).toEqual(canonical(entry(b.partitionedHlo), 'hlo'));
  });
});

describe('whole program: a layer that repeats an earlier one is recorded as a repeat, not lowered again', () => {
  /** The whole program through an outliner, printed with and without functions. */
  const printWhole = (graph: Graph, repeats: boolean, floatDtype?: 'bf16') => {
    const rec = new Outliner({ repeats });
    const outs = emitWholeProgram(graph, rec, { env: {}, ...(floatDtype ? { floatDtype } : {}) });
    const texts = [true, false].flatMap((functions) => {
      const m = new StableHloPrinter({ name: 'x', numPartitions: 1 });
      const h = new HloPrinter({ name: 'x', numPartitions: 1 });
      return [m.finish(rec.print(m, outs, { functions })), h.finish(rec.print(h, outs, { functions }))];
    });
    return { texts, repeated: rec.repeated };
  };
  const small = { vocab: 64, d_model: 32, n_layers: 4, n_heads: 4 };
  const models: [string, Record<string, number>][] = [
    ['examples/gpt2.model', { ...small, n_ctx: 16 }],
    ['examples/llama2.model', { ...small, d_ff: 48, n_kv_heads: 2, max_pos: 16 }],
    ['gemma2.model', {}],
  ];
  test.each(models.flatMap(([file, hparams]) => (['forward', 'train'] as const).map((mode) => [file, mode, hparams] as const)))(
    '%s, %s: the same programs as lowering every layer',
    (file, mode, hparams) => {
      const opts = file === 'gemma2.model' ? { config, dims: { batch: 8, seq: 12 } } : { hparams, dims: { batch: 8, seq: 12 } };
      const r = compileModel(fs.readFileSync(path.join(ROOT, file), 'utf8'), file, opts);
      if (!r.graph) throw new Error(JSON.stringify(r.diagnostics));
      const fg = runPipeline(r.graph, resolvePipeline({})).graph;
      const graph = mode === 'train' ? buildTrainingStep(fg, 'layer-inputs').graph : fg;
      const a = printWhole(graph, true, 'bf16');
      const b = printWhole(graph, false, 'bf16');
      expect(a.repeated).toBeGreaterThan(0);
      expect(b.repeated).toBe(0);
      expect(a.texts).toEqual(b.texts);
    },
  );

  test('a repeat needs inputs of the template\'s types and aliasing, and refuses to continue the segment before it', () => {
    const rec = new Outliner();
    const f32 = { dtype: 'f32' as const, shape: [4] };
    const x = rec.arg(f32, { name: 'x' });
    const y = rec.arg(f32, { name: 'y' });
    const z = rec.arg({ dtype: 'f32', shape: [8] }, { name: 'z' });
    const o0 = { id: 1, op: 'add', scope: 'layers.0' };
    rec.setOrigin(o0);
    const start = rec.position;
    const v = rec.binary('add', x, y);
    const t = rec.template(start, [x, y], [v], [o0])!;
    expect(t).toBeDefined();
    const at = () => ({ id: 2, op: 'add', scope: 'layers.1' });
    expect(rec.repeat(t, [x, z], 'layers.1', at)).toBeUndefined(); // another type
    expect(rec.repeat(t, [x, x], 'layers.1', at)).toBeUndefined(); // one value for two inputs
    expect(rec.repeat(t, [y, x], 'layers.0', at)).toBeUndefined(); // would continue layers.0
    const value = rec.repeat(t, [y, x], 'layers.1', at)!;
    expect(value.node(0).type).toEqual(f32);
    expect(rec.repeated).toBe(1);
  });

  test('a repeat continued by an instruction of the same layer gets its instructions back, in place', () => {
    // An op that lowers to no instruction, so two runs of one layer's nodes, split by it, are one run of instructions.
    defineOp({ name: 'outline_test_identity', doc: 'test only: x', arity: 1, infer: ([x]) => x, xla: (_b, [x]) => x });
    const b = new GraphBuilder('m');
    let h = b.input('x', { dtype: 'f32', shape: [4] });
    const layer = (scope: string, x: number) =>
      b.within(scope, () => {
        const a = b.op('mul', [x, x]);
        const c = b.op('add', [a, x]);
        return b.op('mul', [b.op('tanh', [c]), c]);
      });
    h = layer('layers.0', h); // (reads an input: layers 1… read a layer's output, another op)
    h = layer('layers.1', h);
    h = layer('layers.2', h); // a repeat of layers.1 …
    h = b.within('between', () => b.op('outline_test_identity', [h]));
    h = layer('layers.2', h); // … continued here: lowering makes one segment of both runs
    h = layer('layers.3', h); // a repeat of layers.1 again
    const graph = b.build({ outputs: [{ name: 'y', node: h }] });
    const a = printWhole(graph, true);
    const c = printWhole(graph, false);
    expect(a.texts).toEqual(c.texts);
    expect(a.repeated).toBe(1); // layers.3 (layers.2 got instructions of its own)
    expect(a.texts[0]).toContain('func.call @layers_fn0'); // layers.1 and layers.3 are one function
    const direct = new StableHloPrinter({ name: 'x', numPartitions: 1 });
    expect(a.texts[2]).toBe(direct.finish(emitWholeProgram(graph, direct, { env: {} })));
  });
});
