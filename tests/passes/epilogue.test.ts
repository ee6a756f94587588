import * as fs from 'fs';
import * as path from 'path';
import { compileModel } from '../../grammar';
import { resolvePipeline, runPipeline } from '../../src/passes';
import { countOps } from '../../src/ir';

const source = fs.readFileSync(path.resolve(__dirname, '../../gemma2.model'), 'utf8');

test('the final-logit soft-cap becomes the LM-head matmul epilogue (no standalone softcap left)', () => {
  const g = compileModel(source, 'gemma2.model', { variant: '27b' }).graph!;
  const out = runPipeline(g, resolvePipeline()).graph;
  expect(countOps(out).softcap ?? 0).toBe(0);
  expect(countOps(out).tanh ?? 0).toBe(0);
  const logits = out.nodes.find((n) => n.id === out.outputs.find((o) => o.name === 'logits')!.node)!;
  expect(logits.op).toBe('matmul');
  expect(logits.attrs.softcap).toBe(30);
  expect(logits.type.shape).toEqual(['batch', 'seq', 256000]);
});
