/**
 * The incremental verifier (src/ir/verify.ts `verifyGraph(g, verified)`, used by runPipeline) must reject what
 * verifying from scratch rejects. Both cases were accepted by its first version (found by a code review).
 */
import { GraphBuilder, Graph, fromJSON, toJSON, verifyProblems } from '../../src/ir';
import { definePass, runPipeline } from '../../src/passes';

function small(): Graph {
  const b = new GraphBuilder('m');
  const x = b.input('x', { dtype: 'f32', shape: [3] });
  const y = b.op('neg', [x]);
  const z = b.op('add', [y, x]);
  return b.build({ outputs: [{ name: 'z', node: z }] });
}

/** A pass that returns a top-level frozen graph whose nodes are fresh, unfrozen copies: the manager then freezes nothing. */
const shallowFrozen = definePass({ name: 'shallow', description: 'x', run: (g: Graph) => Object.freeze({ ...g, nodes: g.nodes.map((n) => ({ ...n })) }) });

describe('incremental verifier', () => {
  test('a node changed in place (op, inputs, type) after an earlier pass left nodes unfrozen is still re-typed', () => {
    // The node is the very object verified after 'shallow' (now changed in place) and its inputs' type objects are
    // unchanged: only because it is not frozen must it be typed again.
    const mutate = definePass({
      name: 'mutate',
      description: 'x',
      run: (g: Graph) => {
        const n = g.nodes.find((m) => m.op === 'add') as unknown as { op: string; inputs: number[]; type: unknown };
        n.op = 'mul';
        n.inputs = [n.inputs[0], n.inputs[0]];
        n.type = { dtype: 'f32', shape: [9] };
        return { ...g };
      },
    });
    expect(() => runPipeline(small(), [shallowFrozen, mutate])).toThrow(/pass 'mutate' broke the IR/);
  });

  test('an input id given as a string is a dangling use, as before', () => {
    // (node ids are looked up in an array: '1' must not find node 1)
    const j = JSON.parse(JSON.stringify(toJSON(small())));
    j.nodes[2].inputs = ['1', 0];
    expect(() => fromJSON(j)).toThrow(/not defined before it/);
    expect(verifyProblems(fromJSONUnchecked(j)).length).toBeGreaterThan(0);
  });
});

function fromJSONUnchecked(j: { nodes: unknown[] }): Graph {
  const { format: _f, version: _v, ...rest } = j as Record<string, unknown>;
  return rest as unknown as Graph;
}
