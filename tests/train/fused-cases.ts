/** Finite-difference cases for the fused ops (defined by the passes engineer); used when the op is registered. */
import type { Attrs } from '../../src/ir';

export interface FusedCase {
  name: string;
  op: string;
  args: { shape: number[]; gen?: 'any' | 'pos' | 'unit' | 'bool' | { int: number }; dtype?: 'f32' | 'i32' | 'bool' }[];
  attrs?: Attrs;
  eps?: number;
}

export const FUSED_CASES: FusedCase[] = [
  { name: 'softcap', op: 'softcap', args: [{ shape: [2, 5] }], attrs: { cap: 1.5 } },
  {
    name: 'fused_attention causal, window 3, softcap, GQA groups 2',
    op: 'fused_attention',
    args: [{ shape: [2, 4, 6, 3] }, { shape: [2, 2, 6, 3] }, { shape: [2, 2, 6, 2] }],
    attrs: { scale: 0.6, softcap: 2, causal: true, window: 3, groups: 2 },
  },
  {
    name: 'fused_attention global, no cap, t < s (decoding shape)',
    op: 'fused_attention',
    args: [{ shape: [1, 2, 3, 4] }, { shape: [1, 1, 5, 4] }, { shape: [1, 1, 5, 3] }],
    attrs: { scale: 0.5, softcap: 0, causal: true, window: 0, groups: 2 },
  },
  {
    name: 'fused_attention non-causal with explicit mask',
    op: 'fused_attention',
    args: [{ shape: [1, 2, 4, 3] }, { shape: [1, 2, 4, 3] }, { shape: [1, 2, 4, 3] }, { shape: [1, 1, 4, 4], gen: 'bool', dtype: 'bool' }],
    attrs: { scale: 1, softcap: 0, causal: false, window: 0, groups: 1 },
  },
];
