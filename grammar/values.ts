/**
 * Values of the elaborator. Everything that is not a tensor is known at compile time and folded:
 * numbers, bools, strings, dtypes, symbolic dims (`seq`), lists. `err` is the poison value of an
 * expression whose error was already reported; it propagates silently so one mistake gives one message.
 */
import type { DType, NodeId, TensorType } from '../src/ir/types';

export type Value =
  | { readonly k: 'num'; readonly v: number }
  | { readonly k: 'bool'; readonly v: boolean }
  | { readonly k: 'str'; readonly v: string }
  | { readonly k: 'dtype'; readonly v: DType }
  | { readonly k: 'sym'; readonly v: string }
  | { readonly k: 'list'; readonly v: readonly Value[] }
  | { readonly k: 'tensor'; readonly id: NodeId; readonly t: TensorType }
  | { readonly k: 'none' }
  | { readonly k: 'err' };

export const ERR: Value = { k: 'err' };
export const NONE: Value = { k: 'none' };
export const num = (v: number): Value => ({ k: 'num', v });
export const bool = (v: boolean): Value => ({ k: 'bool', v });
export const str = (v: string): Value => ({ k: 'str', v });
export const list = (v: readonly Value[]): Value => ({ k: 'list', v });

/** How a value is named in messages: "a tensor f32[batch, seq, 2304]", "the number 3". */
export function describeValue(x: Value): string {
  switch (x.k) {
    case 'num':
      return `the number ${fmtNum(x.v)}`;
    case 'bool':
      return `the bool ${x.v}`;
    case 'str':
      return `the string ${JSON.stringify(x.v)}`;
    case 'dtype':
      return `the dtype ${x.v}`;
    case 'sym':
      return `the symbolic dimension '${x.v}'`;
    case 'list':
      return `a list of ${x.v.length}`;
    case 'tensor':
      return `a tensor ${x.t.dtype}[${x.t.shape.join(', ')}]`;
    case 'none':
      return 'nothing';
    case 'err':
      return 'an erroneous value';
  }
}

export function fmtNum(v: number): string {
  if (v === Infinity) return 'inf';
  if (v === -Infinity) return '-inf';
  return String(v);
}

/** Plain JS form for graph metadata and messages. */
export function scalarOf(x: Value): number | boolean | string | undefined {
  switch (x.k) {
    case 'num':
    case 'bool':
    case 'str':
    case 'dtype':
      return x.v;
    default:
      return undefined;
  }
}
