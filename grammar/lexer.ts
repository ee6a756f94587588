/**
 * The lexer of the model language. Newlines are whitespace (statements end where an expression cannot
 * continue; `;` is an optional separator), `#` starts a comment that runs to the end of the line.
 *
 * Keywords come in two kinds. Hard keywords (`block`, `forward`, `param`, `return`, `if`, `then`, `else`,
 * `for`, `in`, `true`, `false`, `inf`) can never be names. Soft keywords (`model`, `hparams`, `variant`,
 * `config`, `dim`) only mean something at the start of a top-level declaration; everywhere else they are
 * ordinary identifiers (so `model.layers[i]: ...` and `dim(x, -1)` work). Every keyword may still appear
 * as a segment of a dotted weight name after a `.` (`encoder.block.0.weight`).
 */
import { createToken, Lexer, TokenType, IToken, ILexingError } from 'chevrotain';

/** Anything usable as a segment of a dotted name: identifiers and every keyword. */
export const NameLike = createToken({ name: 'NameLike', pattern: Lexer.NA, label: 'a name' });
export const Identifier = createToken({
  name: 'Identifier',
  pattern: /[A-Za-z_][A-Za-z0-9_]*/,
  categories: [NameLike],
  label: 'a name',
});

const kw = (word: string, soft = false): TokenType =>
  createToken({
    name: word[0].toUpperCase() + word.slice(1),
    pattern: new RegExp(word),
    longer_alt: Identifier,
    categories: soft ? [Identifier, NameLike] : [NameLike],
    label: `'${word}'`,
  });

// Soft keywords: identifiers everywhere except at the start of a top-level declaration.
export const Model = kw('model', true);
export const Hparams = kw('hparams', true);
export const Variant = kw('variant', true);
export const Config = kw('config', true);
export const Dim = kw('dim', true);
// Hard keywords.
export const Block = kw('block');
export const Forward = kw('forward');
export const Param = kw('param');
export const Return = kw('return');
export const If = kw('if');
export const Then = kw('then');
export const Else = kw('else');
export const For = kw('for');
export const In = kw('in');
export const True = kw('true');
export const False = kw('false');
export const Inf = kw('inf');

/** Element types of tensors: `i32[batch, seq]`, `cast(x, f32)`. Also usable as name segments. */
export const DTypeTok = createToken({
  name: 'DType',
  pattern: /(?:f32|bf16|f16|i32|i64|bool)(?![A-Za-z0-9_])/,
  categories: [NameLike],
  label: 'a dtype',
});

export const NumberLit = createToken({
  name: 'Number',
  pattern: /\d[\d_]*(?:\.\d[\d_]*)?(?:[eE][+-]?\d+)?/,
  label: 'a number',
});
export const StringLit = createToken({ name: 'String', pattern: /"(?:[^"\\\n]|\\.)*"/, label: 'a string' });

const punct = (name: string, pattern: string, label = `'${pattern}'`): TokenType =>
  createToken({ name, pattern: new RegExp(pattern.replace(/[.*+?^${}()|[\]\\/-]/g, '\\$&')), label });

export const Arrow = punct('Arrow', '->');
export const StarStar = punct('StarStar', '**');
export const DotDot = punct('DotDot', '..');
export const EqEq = punct('EqEq', '==');
export const NotEq = punct('NotEq', '!=');
export const LtEq = punct('LtEq', '<=');
export const GtEq = punct('GtEq', '>=');
export const AndAnd = punct('AndAnd', '&&');
export const OrOr = punct('OrOr', '||');
export const Lt = punct('Lt', '<');
export const Gt = punct('Gt', '>');
export const Bang = punct('Bang', '!');
export const Equals = punct('Equals', '=');
export const Plus = punct('Plus', '+');
export const Minus = punct('Minus', '-');
export const Star = punct('Star', '*');
export const Slash = punct('Slash', '/');
export const Percent = punct('Percent', '%');
export const Dot = punct('Dot', '.');
export const Comma = punct('Comma', ',');
export const Colon = punct('Colon', ':');
export const Semi = punct('Semi', ';');
export const LParen = punct('LParen', '(');
export const RParen = punct('RParen', ')');
export const LBracket = punct('LBracket', '[');
export const RBracket = punct('RBracket', ']');
export const LCurly = punct('LCurly', '{');
export const RCurly = punct('RCurly', '}');

// \uFEFF: the byte-order mark some Windows editors put at the start of a UTF-8 file.
export const WhiteSpace = createToken({ name: 'WhiteSpace', pattern: /[ \t\r\n\uFEFF]+/, group: Lexer.SKIPPED, line_breaks: true });
export const Comment = createToken({ name: 'Comment', pattern: /#[^\n]*/, group: Lexer.SKIPPED });

/** Declarations that start a top-level item; used to resynchronise after a syntax error. */
export const TOP_LEVEL_STARTS: readonly TokenType[] = [Model, Hparams, Variant, Config, Dim, Block, Forward];

export const allTokens: TokenType[] = [
  WhiteSpace,
  Comment,
  // Keywords before Identifier (longer_alt makes `modelx` an identifier).
  Model,
  Hparams,
  Variant,
  Config,
  Dim,
  Block,
  Forward,
  Param,
  Return,
  If,
  Then,
  Else,
  For,
  Inf, // before `in`, or `inf` would lex as `in` + longer identifier
  In,
  True,
  False,
  DTypeTok,
  Identifier,
  NameLike,
  NumberLit,
  StringLit,
  Arrow,
  StarStar,
  DotDot,
  EqEq,
  NotEq,
  LtEq,
  GtEq,
  AndAnd,
  OrOr,
  Lt,
  Gt,
  Bang,
  Equals,
  Plus,
  Minus,
  Star,
  Slash,
  Percent,
  Dot,
  Comma,
  Colon,
  Semi,
  LParen,
  RParen,
  LBracket,
  RBracket,
  LCurly,
  RCurly,
];

export const ModelLexer = new Lexer(allTokens, { positionTracking: 'full', ensureOptimizations: false });

export interface LexResult {
  readonly tokens: IToken[];
  readonly errors: ILexingError[];
}

export function lex(source: string): LexResult {
  const r = ModelLexer.tokenize(source);
  return { tokens: r.tokens, errors: r.errors };
}
