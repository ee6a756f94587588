/**
 * The parser: a chevrotain CstParser with error recovery (several syntax errors per run), and the
 * conversion of its concrete syntax tree into the typed AST of ast.ts.
 *
 * Grammar (see docs/language.md and `npm run diagrams`):
 *
 *   program     := topDecl*
 *   topDecl     := 'model' name | 'hparams' '{' hparamDef* '}' | 'variant' (string|name) '{' hparamDef* '}'
 *                | 'config' '{' (configKey ('->' name ('(' 'null' '=' expr ')')? | '=' expr))* '}' | 'dim' name ('<=' expr)? (',' ...)*
 *                | 'block' name '(' params ')' body | 'forward' '(' inputs ')' body
 *   body        := '{' (statement ';'?)* '}'
 *   statement   := name '=' expr | 'return' ((name '=')? expr) (',' ...)* | 'if' expr body ('else' (ifStmt | body))?
 *                | 'for' name 'in' expr ('..' expr)? body
 *   expr        := or;  or := and ('||' and)*;  and := cmp ('&&' cmp)*;  cmp := add (cmpOp add)*
 *   add         := mul (('+'|'-') mul)*;  mul := unary (('*'|'/'|'%') unary)*
 *   unary       := ('-'|'!') unary | pow;  pow := postfix ('**' unary)?
 *   postfix     := atom ('.' name | '[' expr ']' | '(' args ')')* (':' name '(' args ')')?
 *   atom        := number | string | 'true' | 'false' | 'inf' | dtype | name | '(' expr ')' | '[' exprs ']'
 *                | 'if' expr 'then' expr 'else' expr | 'param' dotted '[' exprs ']'
 */
import { CstParser, CstNode, IToken, TokenType, IParserErrorMessageProvider, tokenLabel, EOF, IRecognitionException } from 'chevrotain';
import * as T from './lexer';
import * as A from './ast';
import { DiagnosticBag, SourceText } from './diagnostics';
import type { DType } from '../src/ir/types';

const RULE_WHAT: Record<string, string> = {
  atom: 'an expression',
  unaryExpr: 'an expression',
  powExpr: 'an expression',
  postfixExpr: 'an expression',
  expression: 'an expression',
  statement: 'a statement (an assignment, return, if or for)',
  topDecl: "a declaration ('model', 'hparams', 'variant', 'config', 'dim', 'block' or 'forward')",
  program: "a declaration ('model', 'hparams', 'variant', 'config', 'dim', 'block' or 'forward')",
  configKey: 'a config key',
  pathSegment: 'a name',
};

function describe(tok: IToken | undefined): string {
  if (!tok || tok.tokenType === EOF) return 'the end of the file';
  return `'${tok.image}'`;
}

function labelOf(t: TokenType): string {
  return tokenLabel(t);
}

const messages: IParserErrorMessageProvider = {
  buildMismatchTokenMessage({ expected, actual }) {
    // Expecting the end of the file means: after the last declaration, something that starts none.
    if (expected === EOF) return `expected ${RULE_WHAT.topDecl} but found ${describe(actual)}`;
    return `expected ${labelOf(expected)} but found ${describe(actual)}`;
  },
  buildNotAllInputParsedMessage({ firstRedundant }) {
    return `expected ${RULE_WHAT.topDecl} but found ${describe(firstRedundant)}`;
  },
  buildNoViableAltMessage({ expectedPathsPerAlt, actual, ruleName }) {
    const what = RULE_WHAT[ruleName];
    if (what) return `expected ${what} but found ${describe(actual[0])}`;
    const firsts = new Set<string>();
    for (const alt of expectedPathsPerAlt) for (const path of alt) if (path.length) firsts.add(labelOf(path[0]));
    return `expected ${[...firsts].join(' or ')} but found ${describe(actual[0])}`;
  },
  buildEarlyExitMessage({ expectedIterationPaths, actual }) {
    const firsts = new Set<string>();
    for (const path of expectedIterationPaths) if (path.length) firsts.add(labelOf(path[0]));
    return `expected ${[...firsts].join(' or ')} but found ${describe(actual[0])}`;
  },
};

export class ModelParser extends CstParser {
  constructor() {
    super(T.allTokens, { recoveryEnabled: true, nodeLocationTracking: 'full', maxLookahead: 3, errorMessageProvider: messages });
    this.performSelfAnalysis();
  }

  program = this.RULE('program', () => {
    this.MANY(() => this.SUBRULE(this.topDecl));
  });

  topDecl = this.RULE('topDecl', () => {
    this.OR([
      { ALT: () => this.SUBRULE(this.modelDecl) },
      { ALT: () => this.SUBRULE(this.hparamsDecl) },
      { ALT: () => this.SUBRULE(this.variantDecl) },
      { ALT: () => this.SUBRULE(this.configDecl) },
      { ALT: () => this.SUBRULE(this.dimDecl) },
      { ALT: () => this.SUBRULE(this.blockDecl) },
      { ALT: () => this.SUBRULE(this.forwardDecl) },
    ]);
  });

  modelDecl = this.RULE('modelDecl', () => {
    this.CONSUME(T.Model);
    this.CONSUME(T.Identifier, { LABEL: 'name' });
  });

  hparamsDecl = this.RULE('hparamsDecl', () => {
    this.CONSUME(T.Hparams);
    this.SUBRULE(this.hparamBody);
  });

  variantDecl = this.RULE('variantDecl', () => {
    this.CONSUME(T.Variant);
    this.OR([{ ALT: () => this.CONSUME(T.StringLit, { LABEL: 'name' }) }, { ALT: () => this.CONSUME(T.Identifier, { LABEL: 'name' }) }]);
    this.SUBRULE(this.hparamBody);
  });

  hparamBody = this.RULE('hparamBody', () => {
    this.CONSUME(T.LCurly);
    this.MANY(() => {
      this.SUBRULE(this.hparamDef);
      this.OPTION(() => this.CONSUME(T.Semi));
    });
    this.CONSUME(T.RCurly);
  });

  hparamDef = this.RULE('hparamDef', () => {
    this.CONSUME(T.Identifier, { LABEL: 'name' });
    this.CONSUME(T.Equals);
    this.SUBRULE(this.expression, { LABEL: 'value' });
  });

  configDecl = this.RULE('configDecl', () => {
    this.CONSUME(T.Config);
    this.CONSUME(T.LCurly);
    this.MANY(() => {
      this.SUBRULE(this.configEntry);
      this.OPTION(() => this.CONSUME(T.Semi));
    });
    this.CONSUME(T.RCurly);
  });

  configEntry = this.RULE('configEntry', () => {
    this.SUBRULE(this.configKey);
    this.OR([
      {
        ALT: () => {
          this.CONSUME(T.Arrow);
          this.CONSUME(T.Identifier, { LABEL: 'target' });
          // (null = value): what a JSON null means for this key (`"sliding_window": null` is "no window")
          this.OPTION(() => {
            this.CONSUME(T.LParen);
            this.CONSUME2(T.Identifier, { LABEL: 'nullWord' });
            this.CONSUME(T.Equals);
            this.SUBRULE(this.expression, { LABEL: 'nullValue' });
            this.CONSUME(T.RParen);
          });
        },
      },
      {
        // key = value: what a config.json must say when it has the key (`model_type = "gemma2"`)
        ALT: () => {
          this.CONSUME2(T.Equals, { LABEL: 'expectEq' });
          this.SUBRULE2(this.expression, { LABEL: 'expected' });
        },
      },
    ]);
  });

  configKey = this.RULE('configKey', () => {
    this.OR([
      { ALT: () => this.CONSUME(T.StringLit, { LABEL: 'string' }) },
      {
        ALT: () => {
          this.CONSUME(T.NameLike, { LABEL: 'seg' });
          this.MANY(() => {
            this.CONSUME(T.Dot);
            this.OR2([{ ALT: () => this.CONSUME2(T.NameLike, { LABEL: 'seg' }) }, { ALT: () => this.CONSUME(T.NumberLit, { LABEL: 'seg' }) }]);
          });
        },
      },
    ]);
  });

  dimDecl = this.RULE('dimDecl', () => {
    this.CONSUME(T.Dim);
    this.SUBRULE(this.dimItem, { LABEL: 'item' });
    this.MANY(() => {
      this.CONSUME(T.Comma);
      this.SUBRULE2(this.dimItem, { LABEL: 'item' });
    });
  });

  dimItem = this.RULE('dimItem', () => {
    this.CONSUME(T.Identifier, { LABEL: 'name' });
    this.OPTION(() => {
      this.CONSUME(T.LtEq);
      this.SUBRULE(this.expression, { LABEL: 'bound' });
    });
  });

  blockDecl = this.RULE('blockDecl', () => {
    this.CONSUME(T.Block);
    this.CONSUME(T.Identifier, { LABEL: 'name' });
    this.CONSUME(T.LParen);
    this.OPTION(() => {
      this.SUBRULE(this.blockParam);
      this.MANY(() => {
        this.CONSUME(T.Comma);
        this.OPTION2(() => this.SUBRULE2(this.blockParam));
      });
    });
    this.CONSUME(T.RParen);
    this.SUBRULE(this.body);
  });

  blockParam = this.RULE('blockParam', () => {
    this.CONSUME(T.Identifier, { LABEL: 'name' });
    this.OPTION(() => {
      this.CONSUME(T.Equals);
      this.SUBRULE(this.expression, { LABEL: 'default' });
    });
  });

  forwardDecl = this.RULE('forwardDecl', () => {
    this.CONSUME(T.Forward);
    this.CONSUME(T.LParen);
    this.OPTION(() => {
      this.SUBRULE(this.inputDecl);
      this.MANY(() => {
        this.CONSUME(T.Comma);
        this.OPTION2(() => this.SUBRULE2(this.inputDecl));
      });
    });
    this.CONSUME(T.RParen);
    this.SUBRULE(this.body);
  });

  inputDecl = this.RULE('inputDecl', () => {
    this.CONSUME(T.Identifier, { LABEL: 'name' });
    this.CONSUME(T.Colon);
    this.CONSUME(T.DTypeTok, { LABEL: 'dtype' });
    this.OPTION(() => {
      this.CONSUME(T.LBracket);
      this.OPTION2(() => this.SUBRULE(this.exprList, { LABEL: 'shape' }));
      this.CONSUME(T.RBracket);
    });
    this.OPTION3(() => {
      this.CONSUME(T.Equals);
      this.SUBRULE(this.expression, { LABEL: 'default' });
    });
  });

  body = this.RULE('body', () => {
    this.CONSUME(T.LCurly);
    this.MANY(() => {
      this.SUBRULE(this.statement);
      this.OPTION(() => this.CONSUME(T.Semi));
    });
    this.CONSUME(T.RCurly);
  });

  statement = this.RULE('statement', () => {
    this.OR([
      { ALT: () => this.SUBRULE(this.assignStmt) },
      { ALT: () => this.SUBRULE(this.returnStmt) },
      { ALT: () => this.SUBRULE(this.ifStmt) },
      { ALT: () => this.SUBRULE(this.forStmt) },
    ]);
  });

  assignStmt = this.RULE('assignStmt', () => {
    this.CONSUME(T.Identifier, { LABEL: 'target' });
    this.CONSUME(T.Equals);
    this.SUBRULE(this.expression, { LABEL: 'value' });
  });

  returnStmt = this.RULE('returnStmt', () => {
    this.CONSUME(T.Return);
    this.SUBRULE(this.returnItem);
    this.MANY(() => {
      this.CONSUME(T.Comma);
      this.SUBRULE2(this.returnItem);
    });
  });

  returnItem = this.RULE('returnItem', () => {
    this.OPTION({
      GATE: () => this.LA(2).tokenType === T.Equals,
      DEF: () => {
        this.CONSUME(T.Identifier, { LABEL: 'name' });
        this.CONSUME(T.Equals);
      },
    });
    this.SUBRULE(this.expression, { LABEL: 'value' });
  });

  ifStmt = this.RULE('ifStmt', () => {
    this.CONSUME(T.If);
    this.SUBRULE(this.expression, { LABEL: 'cond' });
    this.SUBRULE(this.body, { LABEL: 'then' });
    this.OPTION(() => {
      this.CONSUME(T.Else);
      this.OR([{ ALT: () => this.SUBRULE2(this.ifStmt, { LABEL: 'elseIf' }) }, { ALT: () => this.SUBRULE2(this.body, { LABEL: 'else' }) }]);
    });
  });

  forStmt = this.RULE('forStmt', () => {
    this.CONSUME(T.For);
    this.CONSUME(T.Identifier, { LABEL: 'variable' });
    this.CONSUME(T.In);
    this.SUBRULE(this.expression, { LABEL: 'from' });
    this.OPTION(() => {
      this.CONSUME(T.DotDot);
      this.SUBRULE2(this.expression, { LABEL: 'to' });
    });
    this.SUBRULE(this.body);
  });

  // ------------------------------------------------------------ expressions

  expression = this.RULE('expression', () => {
    this.SUBRULE(this.orExpr);
  });

  orExpr = this.RULE('orExpr', () => {
    this.SUBRULE(this.andExpr, { LABEL: 'operand' });
    this.MANY(() => {
      this.CONSUME(T.OrOr, { LABEL: 'op' });
      this.SUBRULE2(this.andExpr, { LABEL: 'operand' });
    });
  });

  andExpr = this.RULE('andExpr', () => {
    this.SUBRULE(this.cmpExpr, { LABEL: 'operand' });
    this.MANY(() => {
      this.CONSUME(T.AndAnd, { LABEL: 'op' });
      this.SUBRULE2(this.cmpExpr, { LABEL: 'operand' });
    });
  });

  cmpExpr = this.RULE('cmpExpr', () => {
    this.SUBRULE(this.addExpr, { LABEL: 'operand' });
    this.MANY(() => {
      this.OR([
        { ALT: () => this.CONSUME(T.EqEq, { LABEL: 'op' }) },
        { ALT: () => this.CONSUME(T.NotEq, { LABEL: 'op' }) },
        { ALT: () => this.CONSUME(T.LtEq, { LABEL: 'op' }) },
        { ALT: () => this.CONSUME(T.GtEq, { LABEL: 'op' }) },
        { ALT: () => this.CONSUME(T.Lt, { LABEL: 'op' }) },
        { ALT: () => this.CONSUME(T.Gt, { LABEL: 'op' }) },
      ]);
      this.SUBRULE2(this.addExpr, { LABEL: 'operand' });
    });
  });

  addExpr = this.RULE('addExpr', () => {
    this.SUBRULE(this.mulExpr, { LABEL: 'operand' });
    this.MANY(() => {
      this.OR([{ ALT: () => this.CONSUME(T.Plus, { LABEL: 'op' }) }, { ALT: () => this.CONSUME(T.Minus, { LABEL: 'op' }) }]);
      this.SUBRULE2(this.mulExpr, { LABEL: 'operand' });
    });
  });

  mulExpr = this.RULE('mulExpr', () => {
    this.SUBRULE(this.unaryExpr, { LABEL: 'operand' });
    this.MANY(() => {
      this.OR([
        { ALT: () => this.CONSUME(T.Star, { LABEL: 'op' }) },
        { ALT: () => this.CONSUME(T.Slash, { LABEL: 'op' }) },
        { ALT: () => this.CONSUME(T.Percent, { LABEL: 'op' }) },
      ]);
      this.SUBRULE2(this.unaryExpr, { LABEL: 'operand' });
    });
  });

  unaryExpr = this.RULE('unaryExpr', () => {
    this.OR([
      {
        ALT: () => {
          this.OR2([{ ALT: () => this.CONSUME(T.Minus, { LABEL: 'op' }) }, { ALT: () => this.CONSUME(T.Bang, { LABEL: 'op' }) }]);
          this.SUBRULE(this.unaryExpr, { LABEL: 'operand' });
        },
      },
      { ALT: () => this.SUBRULE(this.powExpr, { LABEL: 'pow' }) },
    ]);
  });

  powExpr = this.RULE('powExpr', () => {
    this.SUBRULE(this.postfixExpr, { LABEL: 'base' });
    this.OPTION(() => {
      this.CONSUME(T.StarStar, { LABEL: 'op' });
      this.SUBRULE(this.unaryExpr, { LABEL: 'exponent' });
    });
  });

  postfixExpr = this.RULE('postfixExpr', () => {
    this.SUBRULE(this.atom);
    this.MANY(() => this.SUBRULE(this.postfixOp));
    this.OPTION(() => {
      this.CONSUME(T.Colon, { LABEL: 'colon' });
      this.CONSUME(T.Identifier, { LABEL: 'callee' });
      this.SUBRULE(this.callArgs);
    });
  });

  postfixOp = this.RULE('postfixOp', () => {
    this.OR([
      {
        ALT: () => {
          this.CONSUME(T.Dot);
          this.OR2([{ ALT: () => this.CONSUME(T.NameLike, { LABEL: 'member' }) }, { ALT: () => this.CONSUME(T.NumberLit, { LABEL: 'member' }) }]);
        },
      },
      {
        ALT: () => {
          this.CONSUME(T.LBracket);
          this.SUBRULE(this.expression, { LABEL: 'index' });
          this.CONSUME(T.RBracket);
        },
      },
      { ALT: () => this.SUBRULE(this.callArgs) },
    ]);
  });

  callArgs = this.RULE('callArgs', () => {
    this.CONSUME(T.LParen);
    this.OPTION(() => {
      this.SUBRULE(this.arg);
      this.MANY(() => {
        this.CONSUME(T.Comma);
        this.OPTION2(() => this.SUBRULE2(this.arg));
      });
    });
    this.CONSUME(T.RParen);
  });

  arg = this.RULE('arg', () => {
    this.OPTION({
      GATE: () => this.LA(2).tokenType === T.Equals,
      DEF: () => {
        this.CONSUME(T.Identifier, { LABEL: 'name' });
        this.CONSUME(T.Equals);
      },
    });
    this.SUBRULE(this.expression, { LABEL: 'value' });
  });

  exprList = this.RULE('exprList', () => {
    this.SUBRULE(this.expression, { LABEL: 'item' });
    this.MANY(() => {
      this.CONSUME(T.Comma);
      this.OPTION(() => this.SUBRULE2(this.expression, { LABEL: 'item' }));
    });
  });

  atom = this.RULE('atom', () => {
    this.OR([
      { ALT: () => this.CONSUME(T.NumberLit, { LABEL: 'number' }) },
      { ALT: () => this.CONSUME(T.StringLit, { LABEL: 'string' }) },
      { ALT: () => this.CONSUME(T.True, { LABEL: 'bool' }) },
      { ALT: () => this.CONSUME(T.False, { LABEL: 'bool' }) },
      { ALT: () => this.CONSUME(T.Inf, { LABEL: 'inf' }) },
      { ALT: () => this.CONSUME(T.DTypeTok, { LABEL: 'dtype' }) },
      { ALT: () => this.CONSUME(T.Identifier, { LABEL: 'name' }) },
      {
        ALT: () => {
          this.CONSUME(T.LParen);
          this.SUBRULE(this.expression, { LABEL: 'paren' });
          this.CONSUME(T.RParen);
        },
      },
      {
        ALT: () => {
          this.CONSUME(T.LBracket, { LABEL: 'list' });
          this.OPTION(() => this.SUBRULE(this.exprList, { LABEL: 'items' }));
          this.CONSUME(T.RBracket);
        },
      },
      { ALT: () => this.SUBRULE(this.ifExpr) },
      { ALT: () => this.SUBRULE(this.paramExpr) },
    ]);
  });

  ifExpr = this.RULE('ifExpr', () => {
    this.CONSUME(T.If);
    this.SUBRULE(this.expression, { LABEL: 'cond' });
    this.CONSUME(T.Then);
    this.SUBRULE2(this.expression, { LABEL: 'then' });
    this.CONSUME(T.Else);
    this.SUBRULE3(this.expression, { LABEL: 'else' });
  });

  paramExpr = this.RULE('paramExpr', () => {
    this.CONSUME(T.Param);
    this.CONSUME(T.NameLike, { LABEL: 'seg' });
    this.MANY(() => {
      this.CONSUME(T.Dot);
      this.OR([{ ALT: () => this.CONSUME2(T.NameLike, { LABEL: 'seg' }) }, { ALT: () => this.CONSUME(T.NumberLit, { LABEL: 'seg' }) }]);
    });
    this.CONSUME(T.LBracket);
    this.OPTION(() => this.SUBRULE(this.exprList, { LABEL: 'shape' }));
    this.CONSUME(T.RBracket);
  });
}

let parserInstance: ModelParser | undefined;
/** The parser is built once (self-analysis takes a while) and reused. */
export function getParser(): ModelParser {
  return (parserInstance ??= new ModelParser());
}

// ================================================================ CST -> AST

type Children = Record<string, (CstNode | IToken)[] | undefined>;

const isToken = (x: CstNode | IToken | undefined): x is IToken => !!x && (x as IToken).image !== undefined;
const isNode = (x: CstNode | IToken | undefined): x is CstNode => !!x && (x as CstNode).children !== undefined;

function tok(c: Children, key: string, i = 0): IToken | undefined {
  const t = c[key]?.[i];
  return isToken(t) && !t.isInsertedInRecovery && Number.isFinite(t.startOffset) ? t : undefined;
}
function toks(c: Children, key: string): IToken[] {
  return (c[key] ?? []).filter((t): t is IToken => isToken(t) && !t.isInsertedInRecovery && Number.isFinite(t.startOffset));
}
function node(c: Children, key: string, i = 0): CstNode | undefined {
  const n = c[key]?.[i];
  return isNode(n) ? n : undefined;
}
function nodes(c: Children, key: string): CstNode[] {
  return (c[key] ?? []).filter(isNode);
}

/** Converts a CST into the AST, tolerating the holes left by error recovery. */
class AstBuilder {
  constructor(
    private readonly src: SourceText,
    private readonly fallback: A.Span,
  ) {}

  tokSpan(t: IToken | undefined): A.Span {
    if (!t) return this.fallback;
    return this.src.span(t.startOffset, (t.endOffset ?? t.startOffset) + 1);
  }

  nodeSpan(n: CstNode | undefined): A.Span {
    const l = n?.location;
    if (l && Number.isFinite(l.startOffset) && Number.isFinite(l.endOffset)) return this.src.span(l.startOffset, (l.endOffset as number) + 1);
    // Recovered nodes may lack a location: use the first real token inside.
    const first = n && this.firstToken(n);
    return first ? this.tokSpan(first) : this.fallback;
  }

  private firstToken(n: CstNode): IToken | undefined {
    let best: IToken | undefined;
    for (const key of Object.keys(n.children)) {
      for (const x of n.children[key] ?? []) {
        const t = isToken(x) ? (x.isInsertedInRecovery || !Number.isFinite(x.startOffset) ? undefined : x) : this.firstToken(x as CstNode);
        if (t && (!best || t.startOffset < best.startOffset)) best = t;
      }
    }
    return best;
  }

  merge(a: A.Span, b: A.Span): A.Span {
    if (a === this.fallback) return b;
    if (b === this.fallback) return a;
    return this.src.span(Math.min(a.start, b.start), Math.max(a.end, b.end));
  }

  ident(t: IToken | undefined): A.Ident | undefined {
    return t ? { name: t.image, span: this.tokSpan(t) } : undefined;
  }

  program(cst: CstNode): A.Decl[] {
    const out: A.Decl[] = [];
    for (const d of nodes(cst.children as Children, 'topDecl')) {
      const decl = this.topDecl(d);
      if (decl) out.push(decl);
    }
    return out;
  }

  topDecl(n: CstNode): A.Decl | undefined {
    const c = n.children as Children;
    const m = node(c, 'modelDecl');
    if (m) {
      const name = this.ident(tok(m.children as Children, 'name'));
      return name && { kind: 'model', name, span: this.nodeSpan(m) };
    }
    const h = node(c, 'hparamsDecl');
    if (h) return { kind: 'hparams', defs: this.hparamBody(node(h.children as Children, 'hparamBody')), span: this.nodeSpan(h) };
    const v = node(c, 'variantDecl');
    if (v) {
      const vc = v.children as Children;
      const t = tok(vc, 'name');
      if (!t) return undefined;
      const name = t.tokenType === T.StringLit ? unquote(t.image) : t.image;
      return { kind: 'variant', name: { name, span: this.tokSpan(t) }, defs: this.hparamBody(node(vc, 'hparamBody')), span: this.nodeSpan(v) };
    }
    const cf = node(c, 'configDecl');
    if (cf) {
      const entries: A.ConfigEntry[] = [];
      const expects: A.ConfigExpect[] = [];
      for (const e of nodes(cf.children as Children, 'configEntry')) {
        const ec = e.children as Children;
        const key = node(ec, 'configKey');
        const target = this.ident(tok(ec, 'target'));
        const expected = node(ec, 'expected');
        if (!key || (!target && !expected)) continue;
        const kc = key.children as Children;
        const str = tok(kc, 'string');
        const segs = str ? unquote(str.image).split('.') : toks(kc, 'seg').map((t) => t.image);
        if (!segs.length || segs.some((s) => !s)) continue;
        if (!target) {
          expects.push({ key: segs, keySpan: this.nodeSpan(key), value: this.expr(expected!), span: this.nodeSpan(e) });
          continue;
        }
        const nullWord = tok(ec, 'nullWord');
        const nullValue = node(ec, 'nullValue');
        if (nullWord && nullWord.image !== 'null') this.badNullWords.push(this.tokSpan(nullWord));
        entries.push({ key: segs, keySpan: this.nodeSpan(key), target, ...(nullValue ? { nullValue: this.expr(nullValue) } : {}), span: this.nodeSpan(e) });
      }
      return { kind: 'config', entries, expects, span: this.nodeSpan(cf) };
    }
    const dm = node(c, 'dimDecl');
    if (dm) {
      const items = nodes(dm.children as Children, 'item').map((it) => {
        const ic = it.children as Children;
        const bound = node(ic, 'bound');
        return { name: this.ident(tok(ic, 'name')) as A.Ident, bound: bound ? this.expr(bound) : undefined };
      });
      return { kind: 'dim', names: items.map((i) => i.name), bounds: items.map((i) => i.bound), span: this.nodeSpan(dm) };
    }
    const b = node(c, 'blockDecl');
    if (b) {
      const bc = b.children as Children;
      const name = this.ident(tok(bc, 'name'));
      if (!name) return undefined;
      const params: A.BlockParam[] = [];
      for (const p of nodes(bc, 'blockParam')) {
        const pc = p.children as Children;
        const pn = this.ident(tok(pc, 'name'));
        if (!pn) continue;
        const def = node(pc, 'default');
        params.push({ name: pn, ...(def ? { default: this.expr(def) } : {}), span: this.nodeSpan(p) });
      }
      return { kind: 'block', name, params, body: this.body(node(bc, 'body')), span: this.nodeSpan(b) };
    }
    const f = node(c, 'forwardDecl');
    if (f) {
      const fc = f.children as Children;
      const inputs: A.InputDecl[] = [];
      for (const p of nodes(fc, 'inputDecl')) {
        const pc = p.children as Children;
        const pn = this.ident(tok(pc, 'name'));
        const dt = tok(pc, 'dtype');
        if (!pn || !dt) continue;
        const shape = node(pc, 'shape');
        const def = node(pc, 'default');
        inputs.push({
          name: pn,
          dtype: dt.image as DType,
          dtypeSpan: this.tokSpan(dt),
          shape: shape ? this.exprList(shape) : [],
          ...(def ? { default: this.expr(def) } : {}),
          span: this.nodeSpan(p),
        });
      }
      return { kind: 'forward', inputs, body: this.body(node(fc, 'body')), span: this.nodeSpan(f) };
    }
    return undefined;
  }

  hparamBody(n: CstNode | undefined): A.HparamDef[] {
    if (!n) return [];
    const out: A.HparamDef[] = [];
    for (const d of nodes(n.children as Children, 'hparamDef')) {
      const dc = d.children as Children;
      const name = this.ident(tok(dc, 'name'));
      if (!name) continue;
      out.push({ name, value: this.expr(node(dc, 'value')), span: this.nodeSpan(d) });
    }
    return out;
  }

  body(n: CstNode | undefined): A.Stmt[] {
    if (!n) return [];
    const out: A.Stmt[] = [];
    for (const s of nodes(n.children as Children, 'statement')) {
      const st = this.statement(s);
      if (st) out.push(st);
    }
    return out;
  }

  statement(n: CstNode): A.Stmt | undefined {
    const c = n.children as Children;
    const a = node(c, 'assignStmt');
    if (a) {
      const ac = a.children as Children;
      const target = this.ident(tok(ac, 'target'));
      return target && { kind: 'assign', target, value: this.expr(node(ac, 'value')), span: this.nodeSpan(a) };
    }
    const r = node(c, 'returnStmt');
    if (r) {
      const items: A.ReturnItem[] = [];
      for (const it of nodes(r.children as Children, 'returnItem')) {
        const ic = it.children as Children;
        const name = this.ident(tok(ic, 'name'));
        items.push({ ...(name ? { name } : {}), value: this.expr(node(ic, 'value')), span: this.nodeSpan(it) });
      }
      return { kind: 'return', items, span: this.nodeSpan(r) };
    }
    const i = node(c, 'ifStmt');
    if (i) return this.ifStmt(i);
    const f = node(c, 'forStmt');
    if (f) {
      const fc = f.children as Children;
      const variable = this.ident(tok(fc, 'variable'));
      if (!variable) return undefined;
      const to = node(fc, 'to');
      return { kind: 'for', variable, from: this.expr(node(fc, 'from')), ...(to ? { to: this.expr(to) } : {}), body: this.body(node(fc, 'body')), span: this.nodeSpan(f) };
    }
    return undefined;
  }

  ifStmt(n: CstNode): A.IfStmt {
    const c = n.children as Children;
    const elseIf = node(c, 'elseIf');
    const els = node(c, 'else');
    const elseBody = elseIf ? [this.ifStmt(elseIf)] : els ? this.body(els) : undefined;
    return { kind: 'if', cond: this.expr(node(c, 'cond')), then: this.body(node(c, 'then')), ...(elseBody ? { else: elseBody } : {}), span: this.nodeSpan(n) };
  }

  exprList(n: CstNode): A.Expr[] {
    return nodes(n.children as Children, 'item').map((e) => this.expr(e));
  }

  errorExpr(n: CstNode | undefined): A.ErrorExpr {
    return { kind: 'error', span: this.nodeSpan(n) };
  }

  /** Any expression-level CST node (expression, orExpr, ..., atom). */
  expr(n: CstNode | undefined): A.Expr {
    if (!n) return this.errorExpr(n);
    const c = n.children as Children;
    switch (n.name) {
      case 'expression':
        return this.expr(node(c, 'orExpr'));
      case 'orExpr':
      case 'andExpr':
      case 'cmpExpr':
      case 'addExpr':
      case 'mulExpr': {
        const operands = nodes(c, 'operand');
        const ops = (c.op ?? []).filter(isToken);
        if (!operands.length) return this.errorExpr(n);
        if (operands.length > MAX_CHAIN) {
          // The tree of a 20,000-term sum is 20,000 deep: every later recursive walk would overflow the stack.
          this.tooDeep.push(this.tokSpan(ops[MAX_CHAIN - 1] ?? ops[0]));
          return this.errorExpr(n);
        }
        let e = this.expr(operands[0]);
        for (let i = 1; i < operands.length; i++) {
          const opTok = ops[i - 1];
          const right = this.expr(operands[i]);
          if (!opTok || opTok.isInsertedInRecovery) {
            e = { kind: 'error', span: this.merge(e.span, right.span) };
            continue;
          }
          e = { kind: 'binary', op: opTok.image as A.BinaryOp, left: e, right, span: this.merge(e.span, right.span), opSpan: this.tokSpan(opTok) };
        }
        return e;
      }
      case 'unaryExpr': {
        const p = node(c, 'pow');
        if (p) return this.expr(p);
        const opTok = tok(c, 'op');
        const operand = this.expr(node(c, 'operand'));
        if (!opTok) return this.errorExpr(n);
        return { kind: 'unary', op: opTok.image as A.UnaryOp, operand, span: this.merge(this.tokSpan(opTok), operand.span), opSpan: this.tokSpan(opTok) };
      }
      case 'powExpr': {
        const base = this.expr(node(c, 'base'));
        const opTok = tok(c, 'op');
        const ex = node(c, 'exponent');
        if (!opTok || !ex) return c.op ? this.errorExpr(n) : base;
        const right = this.expr(ex);
        return { kind: 'binary', op: '**', left: base, right, span: this.merge(base.span, right.span), opSpan: this.tokSpan(opTok) };
      }
      case 'postfixExpr':
        return this.postfix(n);
      case 'atom':
        return this.atom(n);
      case 'ifExpr': {
        return { kind: 'if', cond: this.expr(node(c, 'cond')), then: this.expr(node(c, 'then')), else: this.expr(node(c, 'else')), span: this.nodeSpan(n) };
      }
      case 'paramExpr': {
        const segs = toks(c, 'seg');
        if (!segs.length) return this.errorExpr(n);
        const shape = node(c, 'shape');
        const path = segs.map((t) => ({ kind: 'name' as const, name: t.image, span: this.tokSpan(t) }));
        return {
          kind: 'param',
          path,
          pathSpan: this.merge(path[0].span, path[path.length - 1].span),
          shape: shape ? this.exprList(shape) : [],
          span: this.nodeSpan(n),
        };
      }
      default:
        return this.errorExpr(n);
    }
  }

  args(n: CstNode | undefined): A.Arg[] {
    if (!n) return [];
    const out: A.Arg[] = [];
    for (const a of nodes(n.children as Children, 'arg')) {
      const ac = a.children as Children;
      const name = this.ident(tok(ac, 'name'));
      out.push({ ...(name ? { name } : {}), value: this.expr(node(ac, 'value')), span: this.nodeSpan(a) });
    }
    return out;
  }

  postfix(n: CstNode): A.Expr {
    const c = n.children as Children;
    let e = this.expr(node(c, 'atom'));
    for (const p of nodes(c, 'postfixOp')) {
      const pc = p.children as Children;
      const span = this.merge(e.span, this.nodeSpan(p));
      const member = tok(pc, 'member');
      if (member) {
        e = { kind: 'member', object: e, member: { name: member.image, span: this.tokSpan(member) }, span };
        continue;
      }
      const idx = node(pc, 'index');
      if (idx) {
        e = { kind: 'index', object: e, index: this.expr(idx), span };
        continue;
      }
      const ca = node(pc, 'callArgs');
      if (ca) {
        e = { kind: 'call', callee: e, args: this.args(ca), span };
        continue;
      }
      e = { kind: 'error', span };
    }
    const colon = tok(c, 'colon');
    if (!colon) return e;
    const callee = tok(c, 'callee');
    const ca = node(c, 'callArgs');
    const span = this.nodeSpan(n);
    if (!callee || !ca) return { kind: 'error', span };
    const path = this.pathOf(e);
    const call: A.CallExpr = {
      kind: 'call',
      callee: { kind: 'name', name: callee.image, span: this.tokSpan(callee) },
      args: this.args(ca),
      span: this.merge(this.tokSpan(callee), this.nodeSpan(ca)),
    };
    if (!path) {
      this.badLabels.push(e.span);
      return { kind: 'error', span };
    }
    return { kind: 'labelled', path, pathSpan: e.span, call, span };
  }

  /** Labels that are not scope paths (`f(x): g(y)`), reported by the caller. */
  readonly badLabels: A.Span[] = [];
  /** `key -> h (nul = 0)`: the word must be `null`. */
  readonly badNullWords: A.Span[] = [];
  /** Operator chains longer than MAX_CHAIN. */
  readonly tooDeep: A.Span[] = [];

  /** A label's scope path from `a.b[i].c`; undefined if the expression is not such a chain. */
  pathOf(e: A.Expr): A.PathSegment[] | undefined {
    switch (e.kind) {
      case 'name':
        return [{ kind: 'name', name: e.name, span: e.span }];
      case 'member': {
        const p = this.pathOf(e.object);
        return p && [...p, { kind: 'name', name: e.member.name, span: e.member.span }];
      }
      case 'index': {
        const p = this.pathOf(e.object);
        return p && [...p, { kind: 'index', expr: e.index, span: e.index.span }];
      }
      default:
        return undefined;
    }
  }

  atom(n: CstNode): A.Expr {
    const c = n.children as Children;
    const span = this.nodeSpan(n);
    const num = tok(c, 'number');
    if (num) {
      const text = num.image.replace(/_/g, '');
      return { kind: 'number', value: Number(text), float: /[.eE]/.test(text), span };
    }
    const str = tok(c, 'string');
    if (str) return { kind: 'string', value: unquote(str.image), span };
    const b = tok(c, 'bool');
    if (b) return { kind: 'bool', value: b.image === 'true', span };
    if (tok(c, 'inf')) return { kind: 'number', value: Infinity, float: true, span };
    const dt = tok(c, 'dtype');
    if (dt) return { kind: 'dtype', value: dt.image as DType, span };
    const name = tok(c, 'name');
    if (name) return { kind: 'name', name: name.image, span };
    const paren = node(c, 'paren');
    if (paren) return this.expr(paren);
    if (c.list) {
      const items = node(c, 'items');
      return { kind: 'list', items: items ? this.exprList(items) : [], span };
    }
    const ife = node(c, 'ifExpr');
    if (ife) return this.expr(ife);
    const pe = node(c, 'paramExpr');
    if (pe) return this.expr(pe);
    return { kind: 'error', span };
  }
}

function unquote(s: string): string {
  if (s.length < 2) return s;
  return s.slice(1, -1).replace(/\\(.)/g, (_, ch: string) => (ch === 'n' ? '\n' : ch === 't' ? '\t' : ch));
}

// ================================================================ entry point

export interface ParseResult {
  readonly program: A.Program;
  /** True when there were syntax errors (the program is then partial). */
  readonly hadErrors: boolean;
}

/** Is token i a place to restart parsing after junk at the top level? */
function isTopLevelStart(tokens: readonly IToken[], i: number): boolean {
  const t = tokens[i];
  const tt = t.tokenType;
  if (tt === T.Block || tt === T.Forward) return true;
  if (tt === T.Hparams || tt === T.Config) return tokens[i + 1]?.tokenType === T.LCurly;
  if (tt === T.Variant) return tokens[i + 1]?.tokenType === T.StringLit;
  if (tt === T.Model || tt === T.Dim) return t.startColumn === 1 && tokens[i + 1] !== undefined && tokens[i + 1].tokenType === T.Identifier;
  return false;
}

/**
 * Lex and parse a model file. Syntax errors go into `diags`; the returned program holds every declaration
 * that could be read. Parsing restarts at the next top-level declaration after text it cannot use, so
 * errors in several blocks are all reported.
 */
export function parse(source: string, file: string, diags: DiagnosticBag, src: SourceText = new SourceText(file, source)): ParseResult {
  const lexed = T.lex(source);
  for (const e of lexed.errors) {
    const ch = source.slice(e.offset, e.offset + Math.max(1, e.length));
    // Control characters escaped, long runs cut: the message must stay one short printable line.
    // eslint-disable-next-line no-control-regex
    const esc = (t: string) => t.replace(/[\u0000-\u001f\u007f-\u009f]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
    const shown = ch.length > 1 ? `characters '${esc(ch.length > 20 ? `${ch.slice(0, 20)}…` : ch)}'` : `character ${JSON.stringify(ch)}`;
    diags.add('syntax', src.span(e.offset, e.offset + Math.max(1, e.length)), `unexpected ${shown}`);
  }
  const parser = getParser();
  const tokens = lexed.tokens;
  const decls: A.Decl[] = [];
  // Nesting the recursive-descent parser (and everything after it) cannot take: report where it starts.
  const deep = tooDeeplyNested(tokens);
  if (deep) {
    diags.add('limit', src.span(deep.startOffset, (deep.endOffset ?? deep.startOffset) + 1), `expression nested too deeply (more than ${MAX_NESTING} levels of brackets or prefix operators)`);
    return { program: { file, source, decls }, hadErrors: true };
  }
  let hadErrors = lexed.errors.length > 0;
  let from = 0;
  const endSpan = src.endSpan();
  while (from < tokens.length) {
    parser.input = from === 0 ? tokens : tokens.slice(from);
    let cst: CstNode;
    try {
      cst = parser.program();
    } catch (e) {
      // Chevrotain recursion on absurdly nested input overflows the stack: report, don't crash.
      if (e instanceof RangeError) {
        diags.add('limit', tokens[from] ? src.span(tokens[from].startOffset, tokens[from].endOffset! + 1) : endSpan, 'expression nested too deeply');
        return { program: { file, source, decls }, hadErrors: true };
      }
      throw e;
    }
    const builder = new AstBuilder(src, endSpan);
    decls.push(...builder.program(cst));
    for (const s of builder.badLabels) diags.add('syntax', s, 'a label must be a scope path like `name`, `a.b` or `layers[i]`');
    if (builder.badLabels.length) hadErrors = true;
    for (const s of builder.badNullWords) diags.add('syntax', s, "expected 'null', as in `sliding_window -> window (null = 0)`");
    if (builder.badNullWords.length) hadErrors = true;
    for (const s of builder.tooDeep) diags.add('limit', s, `an expression with more than ${MAX_CHAIN} operators in a row; split it into several statements`);
    if (builder.tooDeep.length) hadErrors = true;
    let restartAt: IToken | undefined;
    for (const err of parser.errors as IRecognitionException[]) {
      hadErrors = true;
      const t = err.token;
      const span = t && t.tokenType !== EOF && Number.isFinite(t.startOffset) ? src.span(t.startOffset, (t.endOffset ?? t.startOffset) + 1) : errorEndSpan(err, src, endSpan);
      diags.add('syntax', span, err.message);
      if (err.name === 'NotAllInputParsedException') restartAt = t;
    }
    if (!restartAt || !Number.isFinite(restartAt.startOffset)) break;
    // Skip to the next declaration after the junk and parse the rest.
    let i = tokens.findIndex((t) => t.startOffset >= restartAt!.startOffset);
    if (i < 0) break;
    i++;
    while (i < tokens.length && !isTopLevelStart(tokens, i)) i++;
    from = i;
  }
  return { program: { file, source, decls }, hadErrors };
}

/** Deepest bracket nesting / run of prefix operators a model file may have; operators chained in one expression. */
export const MAX_NESTING = 200;
export const MAX_CHAIN = 2000;

/** The token where brackets (or consecutive prefix operators) nest deeper than MAX_NESTING, if any. */
function tooDeeplyNested(tokens: readonly IToken[]): IToken | undefined {
  let depth = 0;
  let prefix = 0;
  for (let i = 0; i < tokens.length; i++) {
    const tt = tokens[i].tokenType;
    if (tt === T.LParen || tt === T.LBracket || tt === T.LCurly) depth++;
    else if (tt === T.RParen || tt === T.RBracket || tt === T.RCurly) depth = Math.max(0, depth - 1);
    // `- - - x`, `!!!b`, `a ** -b ** -c …`: each level is a recursive call too
    if (tt === T.Minus || tt === T.Bang || tt === T.StarStar) prefix++;
    else if (tt !== T.LParen) prefix = 0;
    if (depth > MAX_NESTING || prefix > MAX_NESTING) return tokens[i];
  }
  return undefined;
}

/** Errors at the end of the file point just after the previous token. */
function errorEndSpan(err: IRecognitionException, src: SourceText, fallback: A.Span): A.Span {
  const prev = (err as IRecognitionException & { previousToken?: IToken }).previousToken;
  if (prev && Number.isFinite(prev.endOffset)) {
    const o = (prev.endOffset as number) + 1;
    return src.span(o, o + 1);
  }
  return fallback;
}
