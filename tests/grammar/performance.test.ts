/** Elaboration speed: the 27B (46 layers) must build well under a second. */
import { compileModel } from '../../grammar';
import { GEMMA2 } from './helpers';

test('building the Gemma 2 27B IR is fast', () => {
  compileModel(GEMMA2, 'gemma2.model', { variant: '2b' }); // warm up: parser construction, prelude, JIT
  const times: number[] = [];
  let nodes = 0;
  for (let i = 0; i < 5; i++) {
    const t0 = performance.now();
    const r = compileModel(GEMMA2, 'gemma2.model', { variant: '27b' });
    times.push(performance.now() - t0);
    expect(r.graph).toBeDefined();
    nodes = r.graph!.nodes.length;
  }
  const best = Math.min(...times);
  const median = [...times].sort((a, b) => a - b)[2];
  // eslint-disable-next-line no-console
  console.log(`gemma2 27b: ${nodes} nodes, elaboration best ${best.toFixed(1)} ms, median ${median.toFixed(1)} ms`);
  expect(median).toBeLessThan(5000);
});
