/** The typed AST of a model file. Every node carries the span of source text it came from. */
import type { DType } from '../src/ir/types';

/** A range of source text. Lines and columns are 1-based; `end` is an exclusive character offset. */
export interface Span {
  readonly file: string;
  readonly start: number;
  readonly end: number;
  readonly line: number;
  readonly col: number;
  readonly endLine: number;
  /** Column of the last character (inclusive). */
  readonly endCol: number;
}

export interface Ident {
  readonly name: string;
  readonly span: Span;
}

// ---------------------------------------------------------------- expressions

export type Expr =
  | NumberLit
  | StringLit
  | BoolLit
  | DTypeLit
  | NameRef
  | ListExpr
  | UnaryExpr
  | BinaryExpr
  | IfExpr
  | CallExpr
  | MemberExpr
  | IndexExpr
  | LabelledCall
  | ParamExpr
  | ErrorExpr;

export interface NumberLit {
  readonly kind: 'number';
  readonly value: number;
  /** Written with a fraction or exponent (`1.0`, `1e-6`); `inf` is a float too. */
  readonly float: boolean;
  readonly span: Span;
}
export interface StringLit {
  readonly kind: 'string';
  readonly value: string;
  readonly span: Span;
}
export interface BoolLit {
  readonly kind: 'bool';
  readonly value: boolean;
  readonly span: Span;
}
export interface DTypeLit {
  readonly kind: 'dtype';
  readonly value: DType;
  readonly span: Span;
}
export interface NameRef {
  readonly kind: 'name';
  readonly name: string;
  readonly span: Span;
}
export interface ListExpr {
  readonly kind: 'list';
  readonly items: readonly Expr[];
  readonly span: Span;
}
export type UnaryOp = '-' | '!';
export interface UnaryExpr {
  readonly kind: 'unary';
  readonly op: UnaryOp;
  readonly operand: Expr;
  readonly span: Span;
  readonly opSpan: Span;
}
export type BinaryOp = '+' | '-' | '*' | '/' | '%' | '**' | '==' | '!=' | '<' | '<=' | '>' | '>=' | '&&' | '||';
export interface BinaryExpr {
  readonly kind: 'binary';
  readonly op: BinaryOp;
  readonly left: Expr;
  readonly right: Expr;
  readonly span: Span;
  readonly opSpan: Span;
}
/** `if c then a else b`: only the chosen branch is evaluated (c must be known at compile time). */
export interface IfExpr {
  readonly kind: 'if';
  readonly cond: Expr;
  readonly then: Expr;
  readonly else: Expr;
  readonly span: Span;
}
export interface Arg {
  /** Present for named arguments (`axis = -1`). */
  readonly name?: Ident;
  readonly value: Expr;
  readonly span: Span;
}
/** A call of a block or a primitive: `rmsnorm(x, eps)`. */
export interface CallExpr {
  readonly kind: 'call';
  readonly callee: Expr;
  readonly args: readonly Arg[];
  readonly span: Span;
}
export interface MemberExpr {
  readonly kind: 'member';
  readonly object: Expr;
  readonly member: Ident;
  readonly span: Span;
}
export interface IndexExpr {
  readonly kind: 'index';
  readonly object: Expr;
  readonly index: Expr;
  readonly span: Span;
}
/** One segment of a scope path: a name (`layers`) or a computed index (`[i]`). */
export type PathSegment = { readonly kind: 'name'; readonly name: string; readonly span: Span } | { readonly kind: 'index'; readonly expr: Expr; readonly span: Span };
/** `model.layers[i]: decoder_layer(x, ...)`: the call's weights and nodes live under the path. */
export interface LabelledCall {
  readonly kind: 'labelled';
  readonly path: readonly PathSegment[];
  readonly pathSpan: Span;
  readonly call: CallExpr;
  readonly span: Span;
}
/** `param model.embed_tokens.weight[vocab, d_model]`. */
export interface ParamExpr {
  readonly kind: 'param';
  readonly path: readonly PathSegment[];
  readonly pathSpan: Span;
  readonly shape: readonly Expr[];
  readonly span: Span;
}
/** Stands for text the parser could not read (a syntax error was reported for it). */
export interface ErrorExpr {
  readonly kind: 'error';
  readonly span: Span;
}

// ---------------------------------------------------------------- statements

export type Stmt = AssignStmt | ReturnStmt | IfStmt | ForStmt;

export interface AssignStmt {
  readonly kind: 'assign';
  readonly target: Ident;
  readonly value: Expr;
  readonly span: Span;
}
export interface ReturnItem {
  /** `return logits = expr` names a graph output. */
  readonly name?: Ident;
  readonly value: Expr;
  readonly span: Span;
}
export interface ReturnStmt {
  readonly kind: 'return';
  readonly items: readonly ReturnItem[];
  readonly span: Span;
}
export interface IfStmt {
  readonly kind: 'if';
  readonly cond: Expr;
  readonly then: readonly Stmt[];
  readonly else?: readonly Stmt[];
  readonly span: Span;
}
/** `for i in a .. b { }` (half-open range) or `for x in list { }`. */
export interface ForStmt {
  readonly kind: 'for';
  readonly variable: Ident;
  readonly from: Expr;
  readonly to?: Expr;
  readonly body: readonly Stmt[];
  readonly span: Span;
}

// ---------------------------------------------------------------- declarations

export type Decl = ModelDecl | HparamsDecl | VariantDecl | ConfigDecl | DimDecl | BlockDecl | ForwardDecl;

export interface ModelDecl {
  readonly kind: 'model';
  readonly name: Ident;
  readonly span: Span;
}
export interface HparamDef {
  readonly name: Ident;
  readonly value: Expr;
  readonly span: Span;
}
export interface HparamsDecl {
  readonly kind: 'hparams';
  readonly defs: readonly HparamDef[];
  readonly span: Span;
}
export interface VariantDecl {
  readonly kind: 'variant';
  readonly name: Ident;
  readonly defs: readonly HparamDef[];
  readonly span: Span;
}
export interface ConfigEntry {
  /** The dotted path into the config object, e.g. `['rope_parameters', 'rope_theta']`. */
  readonly key: readonly string[];
  readonly keySpan: Span;
  readonly target: Ident;
  /** `key -> hparam (null = value)`: the value a JSON `null` stands for (else null counts as absent). */
  readonly nullValue?: Expr;
  readonly span: Span;
}
/** `key = value` in a config block: a config.json that has the key must give this value (`model_type = "gemma2"`). */
export interface ConfigExpect {
  readonly key: readonly string[];
  readonly keySpan: Span;
  readonly value: Expr;
  readonly span: Span;
}
export interface ConfigDecl {
  readonly kind: 'config';
  readonly entries: readonly ConfigEntry[];
  readonly expects: readonly ConfigExpect[];
  readonly span: Span;
}
export interface DimDecl {
  readonly kind: 'dim';
  readonly names: readonly Ident[];
  /** `dim seq <= max_pos`: the largest size each dim may be bound to (an hparam expression), per name. */
  readonly bounds: readonly (Expr | undefined)[];
  readonly span: Span;
}
export interface BlockParam {
  readonly name: Ident;
  readonly default?: Expr;
  readonly span: Span;
}
export interface BlockDecl {
  readonly kind: 'block';
  readonly name: Ident;
  readonly params: readonly BlockParam[];
  readonly body: readonly Stmt[];
  readonly span: Span;
}
export interface InputDecl {
  readonly name: Ident;
  readonly dtype: DType;
  readonly dtypeSpan: Span;
  /** Dimensions; empty for a scalar. */
  readonly shape: readonly Expr[];
  readonly default?: Expr;
  readonly span: Span;
}
export interface ForwardDecl {
  readonly kind: 'forward';
  readonly inputs: readonly InputDecl[];
  readonly body: readonly Stmt[];
  readonly span: Span;
}

export interface Program {
  readonly file: string;
  readonly source: string;
  readonly decls: readonly Decl[];
}
