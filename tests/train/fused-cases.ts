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
];
