/** The pattern language, the rewrite engine and the pass manager. */
import { GraphBuilder, Graph } from '../../src/ir';
import { pat, rule, applyRules, matchAt, definePass, runPipeline, PassError, resolvePipeline, TraceEntry, RewriteError } from '../../src/passes';
import { nodeMap } from '../../src/ir';

function small() {
  const b = new GraphBuilder('g');
  const x = b.input('x', { dtype: 'f32', shape: [3] });
  const t = b.within('blk', () => b.op('mul', [b.constant(2), b.op('tanh', [b.op('div', [x, b.constant(2)])])]));
  const y = b.op('add', [t, x]);
  return { g: b.build({ outputs: [{ name: 'y', node: y }], taps: { blk: t } }), x, t, y };
}

const softcapPat = pat.op('mul', [pat.op('tanh', [pat.op('div', [pat.v('x'), pat.const('c')])]), pat.const('c')]);

describe('patterns', () => {
  test('commutative match, bound constants must agree', () => {
    const { g, t } = small();
    const view = { node: (id: number) => nodeMap(g).get(id)!, type: (id: number) => nodeMap(g).get(id)!.type, uses: () => 1 };
    const m = matchAt(view, softcapPat, t)!;
    expect(m.values.c).toBe(2);
    expect(m.matched.length).toBe(3);
    const b = new GraphBuilder('h');
    const x = b.input('x', { dtype: 'f32', shape: [3] });
    const r = b.op('mul', [b.op('tanh', [b.op('div', [x, b.constant(2)])]), b.constant(3)]);
    const g2 = b.build({ outputs: [{ name: 'y', node: r }] });
    const v2 = { node: (id: number) => nodeMap(g2).get(id)!, type: (id: number) => nodeMap(g2).get(id)!.type, uses: () => 1 };
    expect(matchAt(v2, softcapPat, r)).toBeNull();
  });

  test('oneOf backtracks when a later constraint fails', () => {
    const { g, t } = small();
    const view = { node: (id: number) => nodeMap(g).get(id)!, type: (id: number) => nodeMap(g).get(id)!.type, uses: () => 1 };
    const p = pat.op('mul', [pat.oneOf(pat.v('a'), pat.op('tanh', [pat.any()], { as: 'th' })), pat.const('c')]);
    const m = matchAt(view, p, t, (mm) => mm.nodes.th !== undefined)!;
    expect(m).not.toBeNull();
    expect(nodeMap(g).get(m.nodes.th)!.op).toBe('tanh');
  });
});

describe('rewrite engine', () => {
  const r = rule('softcap', softcapPat, ({ x }, b, m) => b.op('softcap', [x], { cap: m.values.c }));

  test('replaces uses, outputs and taps; drops dead nodes; keeps the scope; records the trace', () => {
    const { g, t } = small();
    const trace: Omit<TraceEntry, 'pass'>[] = [];
    const h = applyRules(g, [r], { record: (e) => trace.push(e) });
    const sc = h.nodes.find((n) => n.op === 'softcap')!;
    expect(sc.scope).toBe('blk');
    expect(h.taps.blk).toBe(sc.id);
    expect(h.nodes.map((n) => n.op)).toEqual(['input', 'softcap', 'add']);
    expect(trace).toEqual([{ rule: 'softcap', replaced: expect.arrayContaining([t]), created: [sc.id], scope: 'blk' }]);
    expect(Object.isFrozen(h) && Object.isFrozen(h.nodes[1])).toBe(true);
  });

  test('returns the same object when nothing fires', () => {
    const { g } = small();
    expect(applyRules(g, [rule('never', pat.op('exp'), (_v, b, m) => m.root)])).toBe(g);
  });

  test('a replacement of another type is an error naming the rule', () => {
    const { g } = small();
    const bad = rule('bad', pat.op('tanh', [pat.v('x')]), ({ x }, b) => b.op('reduce', [x], { kind: 'sum', axes: [0] }));
    expect(() => applyRules(g, [bad])).toThrow(/rule 'bad' replaced .* of type f32\[3\] with .* f32\[\]/);
  });

  test('a rule set that never converges hits the iteration bound', () => {
    const { g } = small();
    const flip = rule('flip', pat.op('add', [pat.v('a'), pat.v('b')]), ({ a, b: y }, b) => b.op('add', [y, a]));
    expect(() => applyRules(g, [flip], undefined, { maxIterations: 5 })).toThrow(RewriteError);
  });
});

test('a pattern name that JavaScript objects already have is refused, clearly', () => {
  expect(() => pat.v('constructor')).toThrow(/pattern name 'constructor' is reserved/);
  expect(() => pat.op('add', [pat.any(), pat.any()], { as: '__proto__' })).toThrow(/reserved/);
  expect(() => pat.const('toString')).toThrow(/reserved/);
  expect(pat.v('x')).toMatchObject({ kind: 'var', name: 'x' });
});

describe('pass manager', () => {
  const { g } = small();
  test('stats, trace, and verification naming the pass', () => {
    const r = runPipeline(g, resolvePipeline({ passes: ['softcap-folding', 'dce'] }));
    expect(r.stats.map((s) => [s.name, s.nodes_before, s.nodes_after, s.changed])).toEqual([
      ['softcap-folding', 7, 3, true],
      ['dce', 3, 3, false],
    ]);
    expect(r.trace[0].pass).toBe('softcap-folding');
    const broken = definePass({ name: 'breaks-it', description: 'x', run: (gr: Graph) => ({ ...gr, nodes: gr.nodes.slice(1) }) });
    expect(() => runPipeline(g, [broken])).toThrow(PassError);
    expect(() => runPipeline(g, [broken])).toThrow(/pass 'breaks-it' broke the IR: .*not defined before it/);
    const throws = definePass({ name: 'throws', description: 'x', run: () => { throw new Error('boom'); } });
    expect(() => runPipeline(g, [throws])).toThrow(/pass 'throws' failed: boom/);
    const notGraph = definePass({ name: 'returns-nothing', description: 'x', run: () => undefined as unknown as Graph });
    expect(() => runPipeline(g, [notGraph])).toThrow(/returned undefined, not a graph/);
    const nullGraph = definePass({ name: 'returns-null', description: 'x', run: () => null as unknown as Graph });
    expect(() => runPipeline(g, [nullGraph])).toThrow(/pass 'returns-null' .*returned null, not a graph/);
  });
  test('after a verified pass, a node whose input changed type is checked again (the verifier re-types only changed nodes)', () => {
    const { g, x } = small();
    // A first pass that changes the graph object but no node: verification passes and remembers the nodes.
    const rename = definePass({ name: 'rename', description: 'x', run: (gr: Graph) => ({ ...gr, name: 'renamed' }) });
    // Then the input x becomes f32[4]; its users are the very same node objects as before, still typed f32[3].
    const widen = definePass({
      name: 'widen-x',
      description: 'x',
      run: (gr: Graph) => ({ ...gr, nodes: gr.nodes.map((n) => (n.id === x ? { ...n, attrs: { ...n.attrs, shape: [4] }, type: { dtype: 'f32', shape: [4] } } : n)) }),
    });
    expect(() => runPipeline(g, [rename, widen])).toThrow(/pass 'widen-x' broke the IR: .*(div|add)/);
    expect(runPipeline(g, [rename]).graph.name).toBe('renamed');
  });
  test('pipelines: unknown names suggest, --no-pass drops, plugins go after a named pass', () => {
    expect(() => resolvePipeline({ passes: ['softcap-foldng'] })).toThrow(/did you mean 'softcap-folding'/);
    expect(resolvePipeline({ without: ['cse', 'dce'] }).map((p) => p.name)).not.toContain('cse');
    const mine = { ...definePass({ name: 'mine', description: 'x', run: (x: Graph) => x }), origin: 'my.mjs' };
    const names = resolvePipeline({ plugins: [mine], pluginsAfter: 'attention-fusion' }).map((p) => p.name);
    expect(names.indexOf('mine')).toBe(names.indexOf('attention-fusion') + 1);
    expect(() => resolvePipeline({ plugins: [{ ...mine, name: 'cse' }] })).toThrow(/same name as the built-in/);
    expect(() => definePass({ name: 'Bad Name', description: 'x', run: (x: Graph) => x })).toThrow(/lower-case/);
  });
});
