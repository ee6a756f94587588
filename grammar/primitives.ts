/**
 * Primitives: the functions a model file can call besides blocks. Each has a signature (names and
 * defaults, so positional and named arguments bind like block arguments) and folds at compile time when
 * its arguments are compile-time values, or emits IR ops when they are tensors.
 */
import type { Span } from './ast';
import type { DiagnosticCode } from './diagnostics';
import { Value, ERR, NONE, num, bool, list, describeValue, fmtNum } from './values';
import type { Attrs, DType, Dim, NodeId, Shape } from '../src/ir/types';
import { isFloat, isInt } from '../src/ir/shape';

/** Thrown (after reporting) to abandon the evaluation of an expression; caught as the `err` value. */
export class Poison extends Error {
  constructor() {
    super('poison');
  }
}

/** What an operator or primitive needs from the elaborator. */
export interface OpCtx {
  /** The whole call or operator expression. */
  readonly span: Span;
  /** Report an error and abandon the expression. */
  fail(code: DiagnosticCode, span: Span, message: string): never;
  /** Add an IR node (scope and location come from the current expression); ShapeErrors are reported. */
  op(name: string, inputs: readonly NodeId[], attrs?: Attrs): Value;
  constant(value: number, dtype: DType): NodeId;
}

export interface PrimCtx extends OpCtx {
  readonly name: string;
  /** Arguments in parameter order, defaults filled in. */
  readonly args: readonly Value[];
  /** The span of each argument (the call's span for defaulted ones). */
  readonly argSpans: readonly Span[];
}

export interface PrimParam {
  readonly name: string;
  /** Undefined: the argument is required. */
  readonly default?: Value;
}

export interface Prim {
  readonly name: string;
  readonly params: readonly PrimParam[];
  readonly doc: string;
  run(c: PrimCtx): Value;
}

// ---------------------------------------------------------------- argument coercions

function arg(c: PrimCtx, i: number): Value {
  return c.args[i];
}

export function asTensor(c: PrimCtx, i: number): Value & { k: 'tensor' } {
  const v = arg(c, i);
  if (v.k === 'tensor') return v;
  return c.fail('type', c.argSpans[i], `${c.name}: argument '${primParamName(c, i)}' must be a tensor, got ${describeValue(v)}`);
}

function primParamName(c: PrimCtx, i: number): string {
  return PRIMS.get(c.name)?.params[i]?.name ?? String(i);
}

export function asInt(c: PrimCtx, i: number): number {
  const v = arg(c, i);
  if (v.k === 'num' && Number.isInteger(v.v)) return v.v;
  return c.fail('type', c.argSpans[i], `${c.name}: argument '${primParamName(c, i)}' must be an integer, got ${describeValue(v)}`);
}

function asBool(c: PrimCtx, i: number): boolean {
  const v = arg(c, i);
  if (v.k === 'bool') return v.v;
  return c.fail('type', c.argSpans[i], `${c.name}: argument '${primParamName(c, i)}' must be true or false, got ${describeValue(v)}`);
}

function asDType(c: PrimCtx, i: number): DType {
  const v = arg(c, i);
  if (v.k === 'dtype') return v.v;
  return c.fail('type', c.argSpans[i], `${c.name}: argument '${primParamName(c, i)}' must be a dtype (f32, bf16, f16, i32, i64, bool), got ${describeValue(v)}`);
}

function asIntList(c: PrimCtx, i: number): number[] {
  const v = arg(c, i);
  if (v.k === 'num') return [asInt(c, i)];
  if (v.k === 'list' && v.v.every((x) => x.k === 'num' && Number.isInteger(x.v))) return v.v.map((x) => (x as { v: number }).v);
  return c.fail('type', c.argSpans[i], `${c.name}: argument '${primParamName(c, i)}' must be a list of integers, got ${describeValue(v)}`);
}

/** A shape: a list of non-negative integers and symbolic dims. */
export function asShape(c: PrimCtx, i: number, allowMinusOne = false): Dim[] {
  const v = arg(c, i);
  if (v.k === 'list') {
    const out: Dim[] = [];
    for (const x of v.v) {
      if (x.k === 'sym') out.push(x.v);
      else if (x.k === 'num' && Number.isInteger(x.v) && (x.v >= 0 || (allowMinusOne && x.v === -1))) out.push(x.v);
      else return c.fail('type', c.argSpans[i], `${c.name}: a shape holds non-negative integers and symbolic dims, not ${describeValue(x)}`);
    }
    return out;
  }
  return c.fail('type', c.argSpans[i], `${c.name}: argument '${primParamName(c, i)}' must be a shape like [b, t, 4], got ${describeValue(v)}`);
}

function normAxis(c: PrimCtx, i: number, axis: number, rank: number): number {
  const a = axis < 0 ? axis + rank : axis;
  if (a < 0 || a >= rank) return c.fail('shape', c.argSpans[i], `${c.name}: axis ${axis} is out of range for rank ${rank}`);
  return a;
}

// ---------------------------------------------------------------- compile-time folding and tensor ops

const UNARY_FOLD: Record<string, (x: number) => number> = {
  neg: (x) => -x,
  exp: Math.exp,
  log: Math.log,
  tanh: Math.tanh,
  rsqrt: (x) => 1 / Math.sqrt(x),
  sqrt: Math.sqrt,
  sin: Math.sin,
  cos: Math.cos,
  abs: Math.abs,
  sigmoid: (x) => 1 / (1 + Math.exp(-x)),
  gelu_tanh: (x) => 0.5 * x * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (x + 0.044715 * x ** 3))),
};

/** Turn a compile-time value into a tensor operand next to a tensor of dtype `like`. */
export function tensorize(c: OpCtx, v: Value, like: DType | undefined, span: Span, what: string): NodeId {
  if (v.k === 'tensor') return v.id;
  if (v.k === 'num') {
    const dtype = like ?? 'f32';
    if (dtype === 'bool') return c.fail('type', span, `${what}: cannot combine a bool tensor with ${describeValue(v)}`);
    if (isInt(dtype) && !Number.isInteger(v.v))
      return c.fail('type', span, `${what}: ${describeValue(v)} is not an integer but the other operand is an ${dtype} tensor (cast it first)`);
    return c.constant(v.v, dtype);
  }
  if (v.k === 'bool') {
    if (like !== undefined && like !== 'bool') return c.fail('type', span, `${what}: cannot combine a ${like} tensor with ${describeValue(v)}`);
    return c.constant(v.v ? 1 : 0, 'bool');
  }
  if (v.k === 'sym')
    return c.fail('type', span, `${what}: the symbolic dimension '${v.v}' has no value at compile time (use iota or arange to get positions)`);
  return c.fail('type', span, `${what}: expected a tensor or a number, got ${describeValue(v)}`);
}

/** Unary elementwise: folds numbers, emits an op for tensors. */
export function unary(c: OpCtx, op: string, x: Value, span: Span): Value {
  if (x.k === 'err') return ERR;
  if (x.k === 'num') return num(UNARY_FOLD[op](x.v));
  if (x.k === 'tensor') return c.op(op, [x.id]);
  return c.fail('type', span, `${op}: expected a tensor or a number, got ${describeValue(x)}`);
}

const CMP: Record<string, string> = { '<': 'lt', '<=': 'le', '>': 'gt', '>=': 'ge', '==': 'eq', '!=': 'ne' };
const ARITH: Record<string, string> = { '+': 'add', '-': 'sub', '*': 'mul', '/': 'div', '**': 'pow', max: 'max', min: 'min' };

function foldArith(c: OpCtx, op: string, a: number, b: number, span: Span): number {
  switch (op) {
    case '+':
      return a + b;
    case '-':
      return a - b;
    case '*':
      return a * b;
    case '/':
      if (b === 0) return c.fail('type', span, 'division by zero');
      return a / b;
    case '%': {
      if (b === 0) return c.fail('type', span, 'modulo by zero');
      const r = a % b;
      return r !== 0 && r < 0 !== b < 0 ? r + b : r; // the sign of the divisor, as in Python
    }
    case '**':
      return a ** b;
    case 'max':
      return Math.max(a, b);
    case 'min':
      return Math.min(a, b);
    default:
      return c.fail('internal', span, `unknown operator '${op}'`);
  }
}

function scalarEq(a: Value, b: Value): boolean | undefined {
  if (a.k !== b.k) return a.k === 'sym' || b.k === 'sym' ? (a.k === 'num' || b.k === 'num' ? false : undefined) : undefined;
  switch (a.k) {
    case 'num':
    case 'bool':
    case 'str':
    case 'dtype':
    case 'sym':
      return a.v === (b as typeof a).v;
    case 'list': {
      const bv = (b as typeof a).v;
      if (a.v.length !== bv.length) return false;
      for (let i = 0; i < a.v.length; i++) {
        const e = scalarEq(a.v[i], bv[i]);
        if (e !== true) return e;
      }
      return true;
    }
    default:
      return undefined;
  }
}

/**
 * A binary operator or elementwise function on two values: folds compile-time values, emits IR when either
 * is a tensor (the other becomes a constant of the tensor's dtype).
 */
export function binary(c: OpCtx, op: string, a: Value, b: Value, spanA: Span, spanB: Span): Value {
  if (a.k === 'err' || b.k === 'err') return ERR;
  const what = `'${op}'`;
  if (a.k !== 'tensor' && b.k !== 'tensor') {
    if (op === '==' || op === '!=') {
      const e = scalarEq(a, b);
      if (e === undefined) return c.fail('type', c.span, `${what}: cannot compare ${describeValue(a)} with ${describeValue(b)}`);
      return bool(op === '==' ? e : !e);
    }
    if (op === '&&' || op === '||') {
      if (a.k !== 'bool') return c.fail('type', spanA, `${what} needs bools, got ${describeValue(a)}`);
      if (b.k !== 'bool') return c.fail('type', spanB, `${what} needs bools, got ${describeValue(b)}`);
      return bool(op === '&&' ? a.v && b.v : a.v || b.v);
    }
    if (a.k === 'sym' || b.k === 'sym') {
      const s = a.k === 'sym' ? a : b;
      return c.fail(
        'type',
        a.k === 'sym' ? spanA : spanB,
        `${what}: the symbolic dimension '${(s as { v: string }).v}' has no value at compile time (bind it with dims, or keep it out of arithmetic)`,
      );
    }
    if (a.k !== 'num') return c.fail('type', spanA, `${what} needs numbers, got ${describeValue(a)}`);
    if (b.k !== 'num') return c.fail('type', spanB, `${what} needs numbers, got ${describeValue(b)}`);
    if (op in CMP) {
      const [x, y] = [a.v, b.v];
      return bool(op === '<' ? x < y : op === '<=' ? x <= y : op === '>' ? x > y : x >= y);
    }
    return num(foldArith(c, op, a.v, b.v, c.span));
  }
  const like = a.k === 'tensor' ? a.t.dtype : (b as { t: { dtype: DType } }).t.dtype;
  if (op === '%') return c.fail('type', c.span, `'%' is only defined on compile-time numbers, not on tensors`);
  if (op === '&&' || op === '||') {
    const x = tensorize(c, a, 'bool', spanA, what);
    const y = tensorize(c, b, 'bool', spanB, what);
    return c.op(op === '&&' ? 'and' : 'or', [x, y]);
  }
  const x = tensorize(c, a, like, spanA, what);
  const y = tensorize(c, b, like, spanB, what);
  if (op in CMP) return c.op('compare', [x, y], { dir: CMP[op] });
  const ir = ARITH[op];
  if (!ir) return c.fail('internal', c.span, `unknown operator '${op}'`);
  return c.op(ir, [x, y]);
}

// ---------------------------------------------------------------- the primitive table

const P = (name: string, def?: Value): PrimParam => (def === undefined ? { name } : { name, default: def });
const F = bool(false);

function unaryPrim(name: string, doc: string): Prim {
  return { name, doc, params: [P('x')], run: (c) => unary(c, name, c.args[0], c.argSpans[0]) };
}

function binaryPrim(name: string, doc: string): Prim {
  const op = name === 'pow' ? '**' : name;
  return { name, doc, params: [P('a'), P('b')], run: (c) => binary(c, op, c.args[0], c.args[1], c.argSpans[0], c.argSpans[1]) };
}

function reducePrim(name: string, kind: 'sum' | 'mean' | 'max', doc: string): Prim {
  return {
    name,
    doc,
    params: [P('x'), P('axis', NONE), P('keepdims', F)],
    run: (c) => {
      const x = asTensor(c, 0);
      const rank = x.t.shape.length;
      const axes =
        c.args[1].k === 'none' ? x.t.shape.map((_, i) => i) : [...new Set(asIntList(c, 1).map((a) => normAxis(c, 1, a, rank)))].sort((p, q) => p - q);
      return c.op('reduce', [x.id], { kind, axes, keepdims: asBool(c, 2) });
    },
  };
}

/** Resolve a single -1 in a reshape target when the sizes are known. */
function resolveMinusOne(c: PrimCtx, from: Shape, to: Dim[]): Dim[] {
  const k = to.indexOf(-1);
  if (k < 0) return to;
  if (to.indexOf(-1, k + 1) >= 0) return c.fail('shape', c.argSpans[1], 'reshape: at most one dimension may be -1');
  let total = 1;
  for (const d of from) {
    if (typeof d !== 'number') return c.fail('shape', c.argSpans[1], `reshape: -1 needs a static input shape, got [${from.join(', ')}]`);
    total *= d;
  }
  let rest = 1;
  to.forEach((d, i) => {
    if (i !== k) {
      if (typeof d !== 'number') c.fail('shape', c.argSpans[1], 'reshape: -1 cannot be combined with symbolic dimensions');
      rest *= d as number;
    }
  });
  if (rest === 0 || total % rest !== 0) return c.fail('shape', c.argSpans[1], `reshape: cannot reshape [${from.join(', ')}] to [${to.join(', ')}]`);
  return to.map((d, i) => (i === k ? total / rest : d));
}

const PRIM_LIST: Prim[] = [
  unaryPrim('exp', 'e^x'),
  unaryPrim('log', 'natural logarithm'),
  unaryPrim('tanh', 'hyperbolic tangent'),
  unaryPrim('rsqrt', '1 / sqrt(x)'),
  unaryPrim('sqrt', 'square root'),
  unaryPrim('sin', 'sine'),
  unaryPrim('cos', 'cosine'),
  unaryPrim('abs', 'absolute value'),
  unaryPrim('sigmoid', '1 / (1 + e^-x)'),
  unaryPrim('gelu_tanh', 'GELU, tanh approximation'),
  unaryPrim('neg', '-x'),
  binaryPrim('max', 'elementwise maximum'),
  binaryPrim('min', 'elementwise minimum'),
  binaryPrim('pow', 'a ** b'),
  {
    name: 'cast',
    doc: 'convert to another dtype',
    params: [P('x'), P('dtype')],
    run: (c) => {
      const dt = asDType(c, 1);
      const x = c.args[0];
      if (x.k === 'num') return dt === 'bool' ? bool(x.v !== 0) : num(isInt(dt) ? Math.trunc(x.v) : x.v);
      if (x.k === 'bool') return dt === 'bool' ? x : num(x.v ? 1 : 0);
      const t = asTensor(c, 0);
      return t.t.dtype === dt ? t : c.op('cast', [t.id], { dtype: dt });
    },
  },
  {
    name: 'select',
    doc: 'a where cond, else b (broadcasting)',
    params: [P('cond'), P('a'), P('b')],
    run: (c) => {
      const [cond, a, b] = c.args;
      if (cond.k === 'bool') return cond.v ? a : b;
      const ct = asTensor(c, 0);
      const like = a.k === 'tensor' ? a.t.dtype : b.k === 'tensor' ? b.t.dtype : undefined;
      const x = tensorize(c, a, like, c.argSpans[1], 'select');
      const y = tensorize(c, b, like, c.argSpans[2], 'select');
      return c.op('select', [ct.id, x, y]);
    },
  },
  {
    name: 'matmul',
    doc: 'batched matrix product',
    params: [P('a'), P('b'), P('transpose_a', F), P('transpose_b', F)],
    run: (c) => c.op('matmul', [asTensor(c, 0).id, asTensor(c, 1).id], { transpose_a: asBool(c, 2), transpose_b: asBool(c, 3) }),
  },
  {
    name: 'linear',
    doc: 'x · wᵀ with w in [out, in] layout (a Hugging Face Linear weight)',
    params: [P('x'), P('w')],
    run: (c) => c.op('matmul', [asTensor(c, 0).id, asTensor(c, 1).id], { transpose_a: false, transpose_b: true }),
  },
  reducePrim('sum', 'sum', 'sum over axes (all by default)'),
  reducePrim('mean', 'mean', 'mean over axes (all by default)'),
  reducePrim('reduce_max', 'max', 'maximum over axes (all by default)'),
  {
    name: 'softmax',
    doc: 'softmax along an axis',
    params: [P('x'), P('axis', num(-1))],
    run: (c) => {
      const x = asTensor(c, 0);
      return c.op('softmax', [x.id], { axis: normAxis(c, 1, asInt(c, 1), x.t.shape.length) });
    },
  },
  {
    name: 'reshape',
    doc: 'same elements, new shape (one dim may be -1)',
    params: [P('x'), P('shape')],
    run: (c) => {
      const x = asTensor(c, 0);
      return c.op('reshape', [x.id], { shape: resolveMinusOne(c, x.t.shape, asShape(c, 1, true)) });
    },
  },
  {
    name: 'transpose',
    doc: 'permute axes (reverse them by default)',
    params: [P('x'), P('perm', NONE)],
    run: (c) => {
      const x = asTensor(c, 0);
      const r = x.t.shape.length;
      const perm = c.args[1].k === 'none' ? x.t.shape.map((_, i) => r - 1 - i) : asIntList(c, 1).map((a) => normAxis(c, 1, a, r));
      return c.op('transpose', [x.id], { perm });
    },
  },
  {
    name: 'broadcast',
    doc: 'broadcast to a shape (NumPy broadcast_to)',
    params: [P('x'), P('shape')],
    run: (c) => c.op('broadcast', [asTensor(c, 0).id], { shape: asShape(c, 1) }),
  },
  {
    name: 'slice',
    doc: 'x[start:end] along an axis',
    params: [P('x'), P('axis'), P('start', num(0)), P('end', NONE)],
    run: (c) => {
      const x = asTensor(c, 0);
      const axis = normAxis(c, 1, asInt(c, 1), x.t.shape.length);
      const d = x.t.shape[axis];
      const bound = (i: number, v: number): number => {
        if (v >= 0) return v;
        if (typeof d !== 'number') return c.fail('shape', c.argSpans[i], `slice: a negative bound needs a static dimension, got '${d}'`);
        return d + v;
      };
      const start = bound(2, asInt(c, 2));
      let end: number;
      if (c.args[3].k === 'none') {
        if (typeof d !== 'number') return c.fail('shape', c.span, `slice: give 'end' when slicing the symbolic dimension '${d}'`);
        end = d;
      } else end = bound(3, asInt(c, 3));
      return c.op('slice', [x.id], { axis, start, end });
    },
  },
  {
    name: 'concat',
    doc: 'join a list of tensors along an axis',
    params: [P('xs'), P('axis', num(0))],
    run: (c) => {
      const xs = c.args[0];
      if (xs.k !== 'list' || xs.v.length === 0) return c.fail('type', c.argSpans[0], `concat: argument 'xs' must be a non-empty list of tensors, got ${describeValue(xs)}`);
      const ids: NodeId[] = [];
      for (const x of xs.v) {
        if (x.k === 'err') return ERR;
        if (x.k !== 'tensor') return c.fail('type', c.argSpans[0], `concat: argument 'xs' must hold tensors, got ${describeValue(x)}`);
        ids.push(x.id);
      }
      const rank = (xs.v[0] as { t: { shape: Shape } }).t.shape.length;
      return c.op('concat', ids, { axis: normAxis(c, 1, asInt(c, 1), rank) });
    },
  },
  {
    name: 'gather',
    doc: 'rows of a table: table[indices] (embedding lookup)',
    params: [P('table'), P('indices')],
    run: (c) => c.op('gather', [asTensor(c, 0).id, asTensor(c, 1).id], { axis: 0 }),
  },
  {
    name: 'iota',
    doc: 'indices 0, 1, 2, ... along an axis of a shape',
    params: [P('shape'), P('axis'), P('dtype', { k: 'dtype', v: 'i32' })],
    run: (c) => {
      const shape = asShape(c, 0);
      return c.op('iota', [], { shape, axis: normAxis(c, 1, asInt(c, 1), shape.length), dtype: asDType(c, 2) });
    },
  },
  {
    name: 'arange',
    doc: '0, 1, ..., n-1',
    params: [P('n'), P('dtype', { k: 'dtype', v: 'i32' })],
    run: (c) => {
      const n = c.args[0];
      if (n.k !== 'sym' && !(n.k === 'num' && Number.isInteger(n.v) && n.v >= 0))
        return c.fail('type', c.argSpans[0], `arange: argument 'n' must be a dimension, got ${describeValue(n)}`);
      return c.op('iota', [], { shape: [n.v], axis: 0, dtype: asDType(c, 1) });
    },
  },
  {
    name: 'dim',
    doc: 'the size of one axis of a tensor (a number, or a symbolic dim)',
    params: [P('x'), P('axis')],
    run: (c) => {
      const x = asTensor(c, 0);
      const d = x.t.shape[normAxis(c, 1, asInt(c, 1), x.t.shape.length)];
      return typeof d === 'number' ? num(d) : { k: 'sym', v: d };
    },
  },
  {
    name: 'rank',
    doc: 'the number of axes of a tensor',
    params: [P('x')],
    run: (c) => num(asTensor(c, 0).t.shape.length),
  },
  {
    name: 'shape',
    doc: 'the shape of a tensor as a list',
    params: [P('x')],
    run: (c) => list(asTensor(c, 0).t.shape.map((d): Value => (typeof d === 'number' ? num(d) : { k: 'sym', v: d }))),
  },
  {
    name: 'len',
    doc: 'the length of a list',
    params: [P('xs')],
    run: (c) => {
      const xs = c.args[0];
      if (xs.k !== 'list') return c.fail('type', c.argSpans[0], `len: expected a list, got ${describeValue(xs)}`);
      return num(xs.v.length);
    },
  },
  {
    name: 'int',
    doc: 'a compile-time number truncated to an integer',
    params: [P('x')],
    run: (c) => {
      const x = c.args[0];
      if (x.k === 'num') return num(Math.trunc(x.v));
      if (x.k === 'bool') return num(x.v ? 1 : 0);
      return c.fail('type', c.argSpans[0], `int: expected a compile-time number, got ${describeValue(x)}`);
    },
  },
  {
    name: 'float',
    doc: 'a compile-time number',
    params: [P('x')],
    run: (c) => {
      const x = c.args[0];
      if (x.k === 'num') return x;
      if (x.k === 'bool') return num(x.v ? 1 : 0);
      return c.fail('type', c.argSpans[0], `float: expected a compile-time number, got ${describeValue(x)}`);
    },
  },
];

export const PRIMS: ReadonlyMap<string, Prim> = new Map(PRIM_LIST.map((p) => [p.name, p]));

/** Is the dtype a float? Re-exported for the elaborator's messages. */
export { isFloat, fmtNum };
