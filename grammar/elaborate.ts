/**
 * Elaboration: AST → IR graph. Hyperparameters, dims, control flow and block calls are evaluated at
 * compile time; what remains are tensor ops, emitted through the GraphBuilder with the scope path of the
 * labelled calls around them (`model.layers.3.self_attn`) and the source location of their expression.
 *
 * Errors never throw out of here: each is reported as a diagnostic and the expression becomes the poison
 * value `err`, which later operations pass along silently (so one mistake gives one message).
 */
import '../src/ir/ops/index';
import { GraphBuilder } from '../src/ir/builder';
import { ShapeError } from '../src/ir/shape';
import type { Attrs, DType, Dim, Graph, GraphOutput, NodeId, SourceLoc, TensorType } from '../src/ir/types';
import * as A from './ast';
import { DiagnosticBag, DiagnosticCode, DiagnosticNote, didYouMean } from './diagnostics';
import { PRIMS, Poison, Prim, PrimCtx, OpCtx, binary, unary, tensorize } from './primitives';
import { Value, ERR, NONE, num, bool, str, list, describeValue, fmtNum, scalarOf } from './values';

export interface CompileOptions {
  /** A `variant "name"` of the model file; without it the `hparams {}` defaults are used. */
  readonly variant?: string;
  /** A Hugging Face config.json object, mapped onto hyperparameters by the file's `config {}` block. */
  readonly config?: object;
  /** Sizes for symbolic dims (`{ batch: 1, seq: 12 }`); bound dims become numbers in every shape. */
  readonly dims?: Readonly<Record<string, number>>;
  /** Direct hyperparameter overrides, applied last. */
  readonly hparams?: Readonly<Record<string, number | boolean | string>>;
  /**
   * Every dim in `dims` must be used by the model (an error names the option otherwise): for callers that count
   * with the sizes they bind (the TPU plan's tokens per step), a dim the model's shapes do not depend on is a mistake.
   */
  readonly requireDims?: boolean;
}

const DTYPES: readonly DType[] = ['f32', 'bf16', 'f16', 'i32', 'i64', 'bool'];

/** Limits that keep a mistyped number from building a graph the size of the machine. */
export const LIMITS = { maxNodes: 2_000_000, maxLoopIterations: 100_000, maxSteps: 5_000_000, maxCallDepth: 200 };

class LimitExceeded extends Error {}

interface BlockInfo {
  readonly decl: A.BlockDecl;
  readonly file: string;
  /** Every name the body can bind (parameters, assignments, loop variables). */
  readonly locals: ReadonlySet<string>;
}

interface Frame {
  readonly name: string;
  readonly file: string;
  readonly env: Map<string, Value>;
  readonly locals: ReadonlySet<string>;
  readonly scope: string;
  /** Where this frame was called from (in the caller's file). */
  readonly callSite?: A.Span;
}

/** Names a statement list can bind: assignment targets and loop variables, at any depth. */
function boundNames(stmts: readonly A.Stmt[], out: Set<string>): Set<string> {
  for (const s of stmts) {
    if (s.kind === 'assign') out.add(s.target.name);
    else if (s.kind === 'for') {
      out.add(s.variable.name);
      boundNames(s.body, out);
    } else if (s.kind === 'if') {
      boundNames(s.then, out);
      if (s.else) boundNames(s.else, out);
    }
  }
  return out;
}

const spanLoc = (s: A.Span): SourceLoc => ({ file: s.file, line: s.line, col: s.col });

/** The whole model: prelude and model file merged, checked, then elaborated on demand. */
export class Elaborator {
  readonly blocks = new Map<string, BlockInfo>();
  readonly hparamDefs = new Map<string, A.HparamDef>();
  readonly variants = new Map<string, A.VariantDecl>();
  readonly configEntries: A.ConfigEntry[] = [];
  readonly configExpects: A.ConfigExpect[] = [];
  readonly dimDecls = new Map<string, A.Ident>();
  /** `dim seq <= max_pos`: each bounded dim's bound expression, and its value once hyperparameters are known. */
  private readonly dimBoundExprs = new Map<string, A.Expr>();
  readonly dimBounds = new Map<string, number>();
  /** Names used in the shape of some `param` (GPT-2's `n_ctx` sizes its position table). */
  private readonly paramSizing = new Set<string>();
  modelName?: string;
  forward?: A.ForwardDecl;
  forwardLocals: ReadonlySet<string> = new Set();

  private hparams = new Map<string, Value>();
  private dims = new Map<string, Value>();
  private builder = new GraphBuilder();
  private stack: Frame[] = [];
  private steps = 0;
  private taps: Record<string, NodeId> = {};
  private staticRecursion = false;

  constructor(
    private readonly diags: DiagnosticBag,
    private readonly userFile: string,
    private readonly preludeFile: string,
  ) {}

  // ================================================================ collecting declarations

  /** Register the declarations of one file (the prelude first, then the model file). */
  collect(program: A.Program): void {
    const isUser = program.file === this.userFile;
    const ownBlocks = new Set<string>();
    let seenModel: A.ModelDecl | undefined;
    for (const d of program.decls) {
      switch (d.kind) {
        case 'model':
          if (!isUser) break;
          if (seenModel) this.err('duplicate', d.span, `the model is named twice (first as '${seenModel.name.name}')`);
          else {
            seenModel = d;
            this.modelName = d.name.name;
          }
          break;
        case 'hparams':
          for (const h of d.defs) {
            if (this.hparamDefs.has(h.name.name)) this.err('duplicate', h.name.span, `hyperparameter '${h.name.name}' is defined twice`);
            else this.hparamDefs.set(h.name.name, h);
          }
          break;
        case 'variant':
          if (this.variants.has(d.name.name)) this.err('duplicate', d.name.span, `variant ${d.name.name} is defined twice`);
          else this.variants.set(d.name.name, d);
          break;
        case 'config':
          this.configEntries.push(...d.entries);
          this.configExpects.push(...d.expects);
          break;
        case 'dim':
          d.names.forEach((n, k) => {
            if (this.dimDecls.has(n.name)) this.err('duplicate', n.span, `dim '${n.name}' is declared twice`);
            else {
              this.dimDecls.set(n.name, n);
              const bound = d.bounds[k];
              if (bound) this.dimBoundExprs.set(n.name, bound);
            }
          });
          break;
        case 'block': {
          const name = d.name.name;
          if (ownBlocks.has(name)) {
            this.err('duplicate', d.name.span, `block '${name}' is defined twice`);
            break;
          }
          ownBlocks.add(name);
          if (PRIMS.has(name)) {
            this.err('duplicate', d.name.span, `block '${name}' has the name of a primitive; choose another name`);
            break;
          }
          const locals = boundNames(d.body, new Set(d.params.map((p) => p.name.name)));
          const seen = new Set<string>();
          for (const p of d.params) {
            if (seen.has(p.name.name)) this.err('duplicate', p.name.span, `parameter '${p.name.name}' of block '${name}' is declared twice`);
            seen.add(p.name.name);
          }
          // Model blocks shadow prelude blocks of the same name.
          this.blocks.set(name, { decl: d, file: program.file, locals });
          break;
        }
        case 'forward':
          if (!isUser) break;
          if (this.forward) this.err('duplicate', d.span, 'the model has two forward declarations');
          else {
            this.forward = d;
            const locals = boundNames(d.body, new Set(d.inputs.map((i) => i.name.name)));
            this.forwardLocals = locals;
          }
          break;
      }
    }
  }

  // ================================================================ static checks

  /** Checks that need no evaluation: names, calls, arities, hyperparameter cycles, block recursion. */
  check(): void {
    for (const [name, id] of this.dimDecls)
      if (this.hparamDefs.has(name)) this.err('duplicate', id.span, `'${name}' is both a dim and a hyperparameter`);
    for (const e of this.dimBoundExprs.values()) this.checkExpr(e, new Set());
    const hnames = [...this.hparamDefs.keys()];
    for (const v of this.variants.values()) {
      const seen = new Set<string>();
      for (const h of v.defs) {
        if (!this.hparamDefs.has(h.name.name))
          this.err('unknown-hparam', h.name.span, `unknown hyperparameter '${h.name.name}' in variant ${v.name.name}${didYouMean(h.name.name, hnames)}`);
        if (seen.has(h.name.name)) this.err('duplicate', h.name.span, `hyperparameter '${h.name.name}' is set twice in variant ${v.name.name}`);
        seen.add(h.name.name);
      }
    }
    for (const e of this.configEntries)
      if (e.nullValue) this.walkExpr(e.nullValue, (n) => this.err('config', n.span, `the value of a null config key must be a constant, not the name '${n.name}'`), () => undefined);
    for (const e of this.configExpects)
      this.walkExpr(e.value, (n) => this.err('config', n.span, `the value config key '${e.key.join('.')}' must have is a constant, not the name '${n.name}'`), () => undefined);
    for (const e of this.configEntries)
      if (!this.hparamDefs.has(e.target.name))
        this.err('unknown-hparam', e.target.span, `config maps '${e.key.join('.')}' to unknown hyperparameter '${e.target.name}'${didYouMean(e.target.name, hnames)}`);
    // Names inside hyperparameter definitions refer to hyperparameters only.
    const checkH = (h: A.HparamDef) => this.walkExpr(h.value, (n) => this.checkHparamName(n), () => undefined);
    for (const h of this.hparamDefs.values()) checkH(h);
    for (const v of this.variants.values()) v.defs.forEach(checkH);
    this.checkHparamCycles();

    if (!this.forward) this.err('missing', this.userEnd(), 'the model has no forward(...) { } declaration');
    for (const b of this.blocks.values()) if (b.file === this.userFile) this.checkBody(b.decl.body, b.locals, b.decl.params);
    if (this.forward) {
      const inputNames = new Set<string>();
      for (const i of this.forward.inputs) {
        if (inputNames.has(i.name.name)) this.err('duplicate', i.name.span, `input '${i.name.name}' is declared twice`);
        inputNames.add(i.name.name);
        const globals = new Set<string>();
        for (const s of i.shape) this.checkExpr(s, globals);
        if (i.default) this.checkExpr(i.default, globals);
      }
      this.checkBody(this.forward.body, this.forwardLocals, []);
    }
    this.checkRecursion();
  }

  private checkHparamName(n: A.NameRef): void {
    if (!this.hparamDefs.has(n.name)) this.err('unknown-name', n.span, `unknown hyperparameter '${n.name}'${didYouMean(n.name, this.hparamDefs.keys())}`);
  }

  /** Visit names and calls of an expression tree. */
  private walkExpr(e: A.Expr, onName: (n: A.NameRef) => void, onCall: (c: A.CallExpr) => void): void {
    const go = (x: A.Expr): void => {
      switch (x.kind) {
        case 'name':
          onName(x);
          break;
        case 'list':
          x.items.forEach(go);
          break;
        case 'unary':
          go(x.operand);
          break;
        case 'binary':
          go(x.left);
          go(x.right);
          break;
        case 'if':
          go(x.cond);
          go(x.then);
          go(x.else);
          break;
        case 'call':
          onCall(x);
          if (x.callee.kind !== 'name') go(x.callee);
          x.args.forEach((a) => go(a.value));
          break;
        case 'member':
          go(x.object);
          break;
        case 'index':
          go(x.object);
          go(x.index);
          break;
        case 'labelled':
          for (const s of x.path) if (s.kind === 'index') go(s.expr);
          go(x.call);
          break;
        case 'param':
          x.shape.forEach(go);
          break;
        default:
          break;
      }
    };
    go(e);
  }

  private valueCandidates(locals: ReadonlySet<string>): string[] {
    return [...locals, ...this.hparamDefs.keys(), ...this.dimDecls.keys()];
  }

  private unknownName(n: A.NameRef, locals: ReadonlySet<string>): void {
    const hint = this.blocks.has(n.name) || PRIMS.has(n.name) ? ` ('${n.name}' is a block; call it: ${n.name}(...))` : didYouMean(n.name, this.valueCandidates(locals));
    this.err('unknown-name', n.span, `unknown name '${n.name}'${hint}`);
  }

  private checkExpr(e: A.Expr, locals: ReadonlySet<string>): void {
    this.walkExpr(
      e,
      (n) => {
        if (!locals.has(n.name) && !this.hparamDefs.has(n.name) && !this.dimDecls.has(n.name)) this.unknownName(n, locals);
      },
      (c) => {
        const callee = this.resolveCallee(c);
        if (callee) this.bindArgs(callee, c);
      },
    );
    // Member access outside labels and param names; names that size a param (a dim bound on one is fixed by the weights).
    const members = (x: A.Expr): void => {
      if (x.kind === 'member') this.err('type', x.member.span, `'.${x.member.name}': dots are only for scope labels (a.b: f(x)) and param names`);
      if (x.kind === 'param') for (const d of x.shape) this.walkExpr(d, (n) => this.paramSizing.add(n.name), () => undefined);
    };
    this.walkAll(e, members);
  }

  private walkAll(e: A.Expr, f: (x: A.Expr) => void): void {
    f(e);
    switch (e.kind) {
      case 'list':
        e.items.forEach((x) => this.walkAll(x, f));
        break;
      case 'unary':
        this.walkAll(e.operand, f);
        break;
      case 'binary':
        this.walkAll(e.left, f);
        this.walkAll(e.right, f);
        break;
      case 'if':
        this.walkAll(e.cond, f);
        this.walkAll(e.then, f);
        this.walkAll(e.else, f);
        break;
      case 'call':
        this.walkAll(e.callee, f);
        e.args.forEach((a) => this.walkAll(a.value, f));
        break;
      case 'member':
        this.walkAll(e.object, f);
        break;
      case 'index':
        this.walkAll(e.object, f);
        this.walkAll(e.index, f);
        break;
      case 'labelled':
        for (const s of e.path) if (s.kind === 'index') this.walkAll(s.expr, f);
        e.call.args.forEach((a) => this.walkAll(a.value, f));
        break;
      case 'param':
        e.shape.forEach((x) => this.walkAll(x, f));
        break;
      default:
        break;
    }
  }

  private checkBody(stmts: readonly A.Stmt[], locals: ReadonlySet<string>, params: readonly A.BlockParam[]): void {
    for (const p of params) if (p.default) this.checkExpr(p.default, locals);
    const go = (ss: readonly A.Stmt[]): void => {
      for (const s of ss) {
        switch (s.kind) {
          case 'assign':
            this.checkExpr(s.value, locals);
            break;
          case 'return':
            s.items.forEach((i) => this.checkExpr(i.value, locals));
            break;
          case 'if':
            this.checkExpr(s.cond, locals);
            go(s.then);
            if (s.else) go(s.else);
            break;
          case 'for':
            this.checkExpr(s.from, locals);
            if (s.to) this.checkExpr(s.to, locals);
            go(s.body);
            break;
        }
      }
    };
    go(stmts);
  }

  /** A callee by name: a block (model file first, then prelude) or a primitive. Reports unknown ones. */
  private resolveCallee(c: A.CallExpr): BlockInfo | Prim | undefined {
    if (c.callee.kind !== 'name') {
      if (c.callee.kind !== 'error') this.reportAt('type', c.callee.span, 'only blocks and primitives can be called');
      return undefined;
    }
    const name = c.callee.name;
    const b = this.blocks.get(name);
    if (b) return b;
    const p = PRIMS.get(name);
    if (p) return p;
    this.reportAt('unknown-block', c.callee.span, `unknown block or primitive '${name}'${didYouMean(name, [...this.blocks.keys(), ...PRIMS.keys()])}`);
    return undefined;
  }

  /**
   * Match a call's arguments to the callee's parameters: positional first, then named. Reports too many
   * arguments, unknown or repeated names and missing required parameters. Returns for each parameter
   * the argument that binds it (or undefined: use the default), or undefined after an error.
   */
  private bindArgs(callee: BlockInfo | Prim, c: A.CallExpr): (A.Arg | undefined)[] | undefined {
    const isBlock = 'decl' in callee;
    const names = isBlock ? callee.decl.params.map((p) => p.name.name) : callee.params.map((p) => p.name);
    const required = (i: number) => (isBlock ? !callee.decl.params[i].default : callee.params[i].default === undefined);
    // the callee and its signature are spelled out only for a diagnostic (this runs for every call)
    const what = () => `${isBlock ? 'block' : 'primitive'} '${isBlock ? callee.decl.name.name : callee.name}'`;
    const sig = () => `(${names.join(', ')})`;
    const out: (A.Arg | undefined)[] = new Array(names.length).fill(undefined);
    let ok = true;
    let positional = 0;
    for (const a of c.args) {
      if (!a.name) {
        if (positional >= names.length) {
          this.reportAt('arity', a.span, `${what()} takes ${names.length} argument${names.length === 1 ? '' : 's'} ${sig()}, got ${c.args.filter((x) => !x.name).length}`);
          ok = false;
          break;
        }
        out[positional++] = a;
        continue;
      }
      const i = names.indexOf(a.name.name);
      if (i < 0) {
        this.reportAt('unknown-argument', a.name.span, `${what()} has no parameter '${a.name.name}'${didYouMean(a.name.name, names)}; its parameters are ${sig()}`);
        ok = false;
      } else if (out[i]) {
        this.reportAt('arity', a.name.span, `argument '${a.name.name}' of ${what()} is given twice`);
        ok = false;
      } else out[i] = a;
    }
    if (!ok) return undefined;
    const missing = names.filter((n, i) => required(i) && !out[i]);
    if (missing.length) {
      this.reportAt('arity', c.span, `${what()} is missing argument${missing.length > 1 ? 's' : ''} ${missing.map((m) => `'${m}'`).join(', ')}; its parameters are ${sig()}`);
      return undefined;
    }
    return out;
  }

  private checkHparamCycles(): void {
    const reported = new Set<string>();
    const check = (defs: Map<string, A.HparamDef>, where: string) => {
      const state = new Map<string, number>(); // 1 visiting, 2 done
      const path: string[] = [];
      const visit = (name: string): void => {
        const def = defs.get(name);
        if (!def) return;
        state.set(name, 1);
        path.push(name);
        this.walkExpr(
          def.value,
          (n) => {
            const s = state.get(n.name);
            if (s === 1) {
              const cycle = [...path.slice(path.indexOf(n.name)), n.name];
              const key = [...cycle].slice(0, -1).sort().join(',');
              if (!reported.has(key)) {
                reported.add(key);
                this.err('cycle', n.span, `cyclic hyperparameter definition${where}: ${cycle.join(' -> ')}`);
              }
            } else if (s === undefined) visit(n.name);
          },
          () => undefined,
        );
        path.pop();
        state.set(name, 2);
      };
      for (const name of defs.keys()) if (!state.has(name)) visit(name);
    };
    check(this.hparamDefs, '');
    for (const v of this.variants.values()) {
      if (!v.defs.length) continue;
      const defs = new Map(this.hparamDefs);
      for (const h of v.defs) if (defs.has(h.name.name)) defs.set(h.name.name, h);
      check(defs, ` in variant ${v.name.name}`);
    }
  }

  /** Blocks that call themselves, directly or through others (a call graph cycle). */
  private checkRecursion(): void {
    const edges = new Map<string, { to: string; span: A.Span }[]>();
    for (const [name, b] of this.blocks) {
      const out: { to: string; span: A.Span }[] = [];
      const visitExpr = (e: A.Expr) =>
        this.walkAll(e, (x) => {
          if (x.kind === 'call' && x.callee.kind === 'name' && this.blocks.has(x.callee.name)) out.push({ to: x.callee.name, span: x.callee.span });
          if (x.kind === 'labelled' && this.blocks.has(x.call.callee.kind === 'name' ? x.call.callee.name : ''))
            out.push({ to: (x.call.callee as A.NameRef).name, span: x.call.callee.span });
        });
      const go = (ss: readonly A.Stmt[]): void => {
        for (const s of ss) {
          if (s.kind === 'assign') visitExpr(s.value);
          else if (s.kind === 'return') s.items.forEach((i) => visitExpr(i.value));
          else if (s.kind === 'if') {
            visitExpr(s.cond);
            go(s.then);
            if (s.else) go(s.else);
          } else if (s.kind === 'for') {
            visitExpr(s.from);
            if (s.to) visitExpr(s.to);
            go(s.body);
          }
        }
      };
      b.decl.params.forEach((p) => p.default && visitExpr(p.default));
      go(b.decl.body);
      edges.set(name, out);
    }
    // Depth-first search; `path` holds the chain of blocks entered and the call that entered each.
    const state = new Map<string, number>(); // 1: on the path, 2: finished
    const path: { name: string; span?: A.Span }[] = [];
    const reported = new Set<string>();
    const visit = (name: string): void => {
      state.set(name, 1);
      for (const e of edges.get(name) ?? []) {
        const s = state.get(e.to);
        if (s === 1) {
          const start = path.findIndex((p) => p.name === e.to);
          const cycle = [...path.slice(start).map((p) => p.name), e.to];
          const key = [...new Set(cycle)].sort().join(',');
          if (reported.has(key)) continue;
          reported.add(key);
          // Point at a call in the model file when the cycle has one.
          const calls = [...path.slice(start + 1).map((p) => p.span), e.span].filter((x): x is A.Span => !!x);
          const at = calls.find((x) => x.file === this.userFile) ?? calls[calls.length - 1];
          this.err(
            'recursion',
            at,
            cycle.length === 2 ? `block '${e.to}' calls itself (recursion is not allowed)` : `recursion between blocks: ${cycle.join(' -> ')} (recursion is not allowed)`,
          );
          this.staticRecursion = true;
        } else if (s === undefined) {
          path.push({ name: e.to, span: e.span });
          visit(e.to);
          path.pop();
        }
      }
      state.set(name, 2);
    };
    for (const name of edges.keys()) {
      if (state.has(name)) continue;
      path.length = 0;
      path.push({ name });
      visit(name);
    }
  }

  // ================================================================ hyperparameters

  /** Evaluate hyperparameters: defaults, then the variant, then config.json, then direct overrides. */
  evalHparams(opts: CompileOptions): boolean {
    const defs = new Map<string, A.HparamDef>(this.hparamDefs);
    let ok = true;
    if (opts.variant !== undefined) {
      const v = this.variants.get(opts.variant);
      if (!v) {
        const names = [...this.variants.keys()];
        this.diags.addOption(
          'unknown-variant',
          'variant',
          opts.variant,
          names.length
            ? `unknown variant '${opts.variant}'${didYouMean(opts.variant, names)}; the variants are ${names.map((n) => `'${n}'`).join(', ')}`
            : `unknown variant '${opts.variant}': the model has no variants`,
        );
        ok = false;
      } else for (const h of v.defs) if (defs.has(h.name.name)) defs.set(h.name.name, h);
    }
    // Values fixed by config.json (with the mapping line they came through) or by the `hparams` option.
    const fixed = new Map<string, { value: Value; span: A.Span; from: string } | { value: Value; override: true }>();
    if (opts.config !== undefined) {
      const cfg = opts.config as Record<string, unknown>;
      if (!this.checkConfigExpects(cfg)) ok = false;
      const done = new Set<string>();
      for (const e of this.configEntries) {
        if (done.has(e.target.name) || !this.hparamDefs.has(e.target.name)) continue;
        const x = configAt(cfg, e.key);
        const key = e.key.join('.');
        if (x === null && e.nullValue) {
          // `key -> h (null = v)`: the model says what null means (no window, no soft-cap, ...)
          done.add(e.target.name);
          const v = this.configConstant(e.span.file, e.nullValue);
          if (v.k === 'num' || v.k === 'bool' || v.k === 'str') fixed.set(e.target.name, { value: v, span: e.keySpan, from: `config key '${key}' (null)` });
          else {
            if (v.k !== 'err') this.err('config', e.nullValue.span, `the value for a null '${key}' must be a number, bool or string, got ${describeValue(v)}`);
            ok = false;
          }
          continue;
        }
        if (x === undefined || x === null) continue;
        done.add(e.target.name);
        if (typeof x === 'number') fixed.set(e.target.name, { value: num(x), span: e.keySpan, from: `config key '${key}'` });
        else if (typeof x === 'boolean') fixed.set(e.target.name, { value: bool(x), span: e.keySpan, from: `config key '${key}'` });
        else if (typeof x === 'string') fixed.set(e.target.name, { value: str(x), span: e.keySpan, from: `config key '${key}'` });
        else {
          this.err('config', e.keySpan, `config key '${key}' holds ${Array.isArray(x) ? 'a list' : 'an object'}; hyperparameters are numbers, bools or strings`);
          ok = false;
        }
      }
    }
    for (const [k, v] of Object.entries(opts.hparams ?? {})) {
      const value = typeof v === 'number' ? num(v) : typeof v === 'boolean' ? bool(v) : str(String(v));
      if (!this.hparamDefs.has(k)) {
        this.diags.addOption('unknown-hparam', 'hparams', k, `unknown hyperparameter '${k}'${didYouMean(k, this.hparamDefs.keys())}`);
        ok = false;
      } else fixed.set(k, { value, override: true });
    }

    const values = new Map<string, Value>();
    const visiting = new Set<string>();
    const evalOne = (name: string): Value => {
      const have = values.get(name);
      if (have) return have;
      const def = defs.get(name);
      if (!def) return ERR;
      if (visiting.has(name)) return ERR; // reported by the static cycle check
      visiting.add(name);
      const frame: Frame = { name: 'hparams', file: def.span.file, env: new Map(), locals: new Set(), scope: '' };
      const hparamEnv = (n: string): Value | undefined => (defs.has(n) ? evalOne(n) : undefined);
      let v = this.evalIn(frame, def.value, hparamEnv);
      visiting.delete(name);
      if (v.k !== 'err' && v.k !== 'num' && v.k !== 'bool' && v.k !== 'str' && v.k !== 'dtype') {
        this.err('type', def.value.span, `hyperparameter '${name}' must be a number, bool, string or dtype, got ${describeValue(v)}`);
        v = ERR;
      }
      const f = fixed.get(name);
      if (f && 'override' in f) {
        // A value of the `hparams` option: its problems are the option's, not a line of the file's.
        const given = scalarOf(f.value);
        if (v.k === 'err') v = f.value; // the definition's own error is reported already
        else if (v.k === 'dtype' && f.value.k === 'str' && DTYPES.includes(given as DType)) v = { k: 'dtype', v: given as DType };
        else if (f.value.k === v.k) v = f.value;
        else {
          const kind = v.k === 'num' ? 'a number' : v.k === 'bool' ? 'true or false' : v.k === 'str' ? 'a string' : 'a dtype';
          const d = scalarOf(v);
          const dflt = `${typeof d === 'string' && v.k === 'str' ? JSON.stringify(d) : String(d)} by default${v.k === 'dtype' ? `; one of ${DTYPES.join(', ')}` : ''}`;
          this.diags.addOption('type', 'hparams', name, `hyperparameter '${name}' takes ${kind} (${dflt}), not ${describeValue(f.value)}`);
          v = ERR;
        }
      } else if (f) {
        if (v.k !== 'err' && f.value.k !== v.k && !(v.k === 'dtype' && f.value.k === 'str')) {
          this.err('config', f.span, `${f.from} gives ${describeValue(f.value)} for '${name}', which is ${describeValue(v)} by default`);
          v = ERR;
        } else if (v.k === 'dtype' && f.value.k === 'str') {
          const d = f.value.v as DType;
          v = DTYPES.includes(d) ? { k: 'dtype', v: d } : ERR;
          if (v.k === 'err') this.err('config', f.span, `${f.from} gives ${describeValue(f.value)} for '${name}', which must be a dtype`);
        } else v = f.value;
      }
      values.set(name, v);
      return v;
    };
    for (const name of defs.keys()) {
      const v = evalOne(name);
      if (v.k === 'err') ok = false;
    }
    this.hparams = values;
    this.hparamOrigins.clear();
    for (const [name, f] of fixed) if ('from' in f) this.hparamOrigins.set(name, { span: f.span, from: f.from });
    this.hparamDeps = (name) => {
      const seen = new Set<string>();
      const go = (n: string) => {
        const def = defs.get(n);
        if (!def || seen.has(n)) return;
        seen.add(n);
        this.walkExpr(def.value, (x) => go(x.name), () => undefined);
      };
      go(name);
      return seen;
    };
    return ok;
  }

  /**
   * The `config {}` mapping in file order (the first key present wins for an hparam): each key path, its
   * hyperparameter, and what a JSON null stands for when the entry says so (a constant, evaluated here).
   */
  configMapping(): { key: string[]; hparam: string; nullValue?: number | boolean | string }[] {
    return this.configEntries.map((e) => {
      const v = e.nullValue ? this.configConstant(e.span.file, e.nullValue) : undefined;
      const nullValue = v && (v.k === 'num' || v.k === 'bool' || v.k === 'str') ? (v.v as number | boolean | string) : undefined;
      return { key: [...e.key], hparam: e.target.name, ...(nullValue !== undefined ? { nullValue } : {}) };
    });
  }

  /** A constant of the config block (what a null means, a value a key must have): evaluated with no names in scope. */
  private configConstant(file: string, e: A.Expr): Value {
    const frame: Frame = { name: 'config', file, env: new Map(), locals: new Set(), scope: '' };
    return this.evalIn(frame, e, () => undefined);
  }

  /** The constant values of `key = value` config entries (what this model file's config.json says). */
  configExpectations(): { key: string[]; value: number | boolean | string }[] {
    const out: { key: string[]; value: number | boolean | string }[] = [];
    for (const e of this.configExpects) {
      const v = this.configConstant(e.span.file, e.value);
      if (v.k === 'num' || v.k === 'bool' || v.k === 'str') out.push({ key: [...e.key], value: v.v as number | boolean | string });
    }
    return out;
  }

  /**
   * `config { model_type = "gemma2" }`: a config.json that has the key must give that value — a checkpoint of another
   * architecture (a Llama folder given to gemma2.model) is refused at the entry, before any weight is read.
   */
  private checkConfigExpects(cfg: Record<string, unknown>): boolean {
    let ok = true;
    for (const e of this.configExpects) {
      const v = this.configConstant(e.span.file, e.value);
      if (v.k !== 'num' && v.k !== 'bool' && v.k !== 'str') {
        if (v.k !== 'err') this.err('config', e.value.span, `the value a config key must have is a constant number, bool or string, got ${describeValue(v)}`);
        ok = false;
        continue;
      }
      const x = configAt(cfg, e.key);
      if (x === undefined || x === null || x === v.v) continue;
      const key = e.key.join('.');
      this.err('config', e.span, `the config has ${key} ${JSON.stringify(x)}, but this model file is for ${key} ${JSON.stringify(v.v)}: the config (and a checkpoint it belongs to) is for another architecture; give the matching model file`);
      ok = false;
    }
    return ok;
  }

  /** Hyperparameters set from config.json: where the mapping is and which key it read. */
  private readonly hparamOrigins = new Map<string, { span: A.Span; from: string }>();
  /** An hparam and every hparam its definition (for the chosen variant) uses, transitively. */
  private hparamDeps: (name: string) => Set<string> = (n) => new Set([n]);

  /**
   * Notes for an error on a line of the model file: the config.json values behind the hyperparameters that
   * line names (directly or through their definitions), e.g. `'d_model' is -64, from config key 'hidden_size'`.
   * A size that came from a config is otherwise invisible in an error that points into the model file.
   */
  configNotes(lineText: string): DiagnosticNote[] {
    if (!this.hparamOrigins.size) return [];
    const named = new Set(lineText.replace(/#.*$/, '').match(/[A-Za-z_][A-Za-z0-9_]*/g) ?? []);
    const found = new Set<string>();
    for (const n of named) if (this.hparamDefs.has(n)) for (const d of this.hparamDeps(n)) if (this.hparamOrigins.has(d)) found.add(d);
    const out: DiagnosticNote[] = [];
    for (const name of [...found].slice(0, 4)) {
      const o = this.hparamOrigins.get(name)!;
      const v = this.hparams.get(name);
      out.push(this.diags.note(o.span, `'${name}' is ${v ? describeValue(v).replace(/^the (number|string|bool|dtype) /, '') : 'set'}, from ${o.from}`));
    }
    return out;
  }

  // ================================================================ dims

  bindDims(opts: CompileOptions): boolean {
    let ok = true;
    for (const [name] of this.dimDecls) this.dims.set(name, { k: 'sym', v: name });
    this.dimBounds.clear();
    for (const [name, e] of this.dimBoundExprs) {
      const frame: Frame = { name: 'dims', file: e.span.file, env: new Map(), locals: new Set(), scope: '' };
      const v = this.evalIn(frame, e, (n) => this.hparams.get(n));
      if (v.k === 'err') ok = false;
      else if (v.k !== 'num' || !Number.isInteger(v.v) || (v.v as number) < 1) {
        this.err('type', e.span, `the bound of dim '${name}' must be a positive integer, got ${describeValue(v)}`);
        ok = false;
      } else this.dimBounds.set(name, v.v as number);
    }
    for (const [name, n] of Object.entries(opts.dims ?? {})) {
      const decl = this.dimDecls.get(name);
      if (!decl) {
        this.diags.addOption('unknown-dim', 'dims', name, `unknown dim '${name}'${didYouMean(name, this.dimDecls.keys())}; the model declares ${[...this.dimDecls.keys()].map((d) => `'${d}'`).join(', ') || 'no dims'}`);
        ok = false;
      } else if (!Number.isInteger(n) || n < 1) {
        this.diags.addOption('unknown-dim', 'dims', name, `dim '${name}' must be bound to a positive integer, got ${n}`);
        ok = false;
      } else if (this.dimBounds.has(name) && n > this.dimBounds.get(name)!) {
        const e = this.dimBoundExprs.get(name)!;
        // An override the user already gave is raised, not given twice (--hparam max_pos=64 --hparam max_pos=65 is an error).
        const given = e.kind === 'name' && opts.hparams !== undefined && e.name in opts.hparams;
        const hint =
          e.kind !== 'name'
            ? ''
            : this.paramSizing.has(e.name)
              ? `; '${e.name}' also sizes a weight of the model, so a checkpoint fixes it: use at most ${this.dimBounds.get(name)}`
              : given
                ? `; if the model can take more, raise your override of '${e.name}' to ${n} or more`
                : `; if the model can take more, override '${e.name}' (e.g. --hparam ${e.name}=${n})`;
        this.err('unknown-dim', e.span, `dim '${name}' = ${n} is above its bound: the model declares ${name} <= ${this.dimBounds.get(name)}${hint}`);
        ok = false;
      } else this.dims.set(name, num(n));
    }
    return ok;
  }

  // ================================================================ the forward function

  build(opts: CompileOptions): Graph | undefined {
    const fwd = this.forward;
    if (!fwd) return undefined;
    this.builder = new GraphBuilder(this.modelName ?? this.userFile.replace(/^.*[\\/]/, '').replace(/\.[^.]*$/, ''));
    const errorsBefore = this.diags.errorCount;
    const frame: Frame = { name: 'forward', file: fwd.span.file, env: new Map(), locals: this.forwardLocals, scope: '' };
    this.stack = [frame];
    let outputs: GraphOutput[] = [];
    try {
      for (const inp of fwd.inputs) frame.env.set(inp.name.name, this.declareInput(frame, inp));
      const ret = this.execStmts(frame, fwd.body);
      if (!ret) this.err('missing', this.closingBrace(fwd.span), 'forward ends without a return (e.g. `return logits = ...`)');
      else outputs = this.forwardOutputs(ret);
    } catch (e) {
      if (e instanceof LimitExceeded) {
        this.err('limit', fwd.span, e.message);
        return undefined;
      }
      throw e;
    }
    if (this.diags.errorCount > errorsBefore || !outputs.length) return undefined;
    if (opts.requireDims) {
      for (const [name, n] of Object.entries(opts.dims ?? {})) {
        if (!this.usedDims.has(name)) this.diags.addOption('unused-dim', 'dims', name, `dim '${name}' is bound to ${n}, but no shape of the model depends on it (no input uses it): the program would be the same for any ${name}`);
      }
      if (this.diags.errorCount > errorsBefore) return undefined;
    }
    const hp: Record<string, number | boolean | string> = {};
    for (const [k, v] of this.hparams) {
      const s = scalarOf(v);
      if (s !== undefined) hp[k] = s;
    }
    const dims = [...this.dims].filter(([, v]) => v.k === 'sym').map(([k]) => k);
    const dimBounds = Object.fromEntries(this.dimBounds);
    return this.builder.build({
      outputs, taps: this.taps, dims, hparams: hp,
      ...(this.dimBounds.size ? { dimBounds } : {}),
      ...(opts.variant !== undefined ? { variant: opts.variant } : {}),
    });
  }

  private forwardOutputs(ret: { stmt: A.ReturnStmt; values: Value[] }): GraphOutput[] {
    const out: GraphOutput[] = [];
    const names = new Set<string>();
    ret.stmt.items.forEach((item, i) => {
      const v = ret.values[i];
      const name = item.name?.name ?? (ret.stmt.items.length === 1 ? 'output' : `output${i}`);
      if (names.has(name)) this.err('duplicate', item.name?.span ?? item.span, `output '${name}' is returned twice`);
      names.add(name);
      if (v.k === 'err') return;
      if (v.k !== 'tensor') {
        this.err('type', item.value.span, `forward must return tensors; '${name}' is ${describeValue(v)}`);
        return;
      }
      out.push({ name, node: v.id });
    });
    return out;
  }

  private declareInput(frame: Frame, inp: A.InputDecl): Value {
    const shape: Dim[] = [];
    let bad = false;
    for (const s of inp.shape) {
      const v = this.eval(frame, s);
      if (v.k === 'sym') shape.push(v.v);
      else if (v.k === 'num' && Number.isInteger(v.v) && v.v >= 0) shape.push(v.v);
      else {
        if (v.k !== 'err') this.err('type', s.span, `a dimension of input '${inp.name.name}' must be a non-negative integer or a dim, got ${describeValue(v)}`);
        bad = true;
      }
    }
    if (bad) return ERR;
    const extra: Record<string, number | string> = {};
    if (inp.default) {
      const d = inp.default;
      if (d.kind === 'call' && d.callee.kind === 'name' && d.callee.name === 'arange' && d.args.length === 1 && !d.args[0].name) {
        const n = this.eval(frame, d.args[0].value);
        if (n.k === 'err') return ERR;
        const dimv = n.k === 'sym' || n.k === 'num' ? n.v : undefined;
        if (inp.dtype === 'bool' || shape.length !== 1 || dimv !== shape[0]) {
          this.err('type', d.span, `the default arange(${n.k === 'sym' || n.k === 'num' ? fmtNum(n.v as number) : '...'}) does not fit input '${inp.name.name}': ${inp.dtype}[${shape.join(', ')}]`);
          return ERR;
        }
        extra.default = 'arange';
      } else {
        const v = this.eval(frame, d);
        if (v.k === 'err') return ERR;
        if (v.k === 'num' && Number.isFinite(v.v)) extra.default = v.v;
        else {
          this.err('type', d.span, `an input default must be arange(dim) or a number, got ${describeValue(v)}`);
          return ERR;
        }
      }
    }
    const type: TensorType = { dtype: inp.dtype, shape };
    try {
      const id = this.builder.input(inp.name.name, type, extra, { scope: '', loc: spanLoc(inp.name.span) });
      return { k: 'tensor', id, t: type };
    } catch (e) {
      if (e instanceof ShapeError) {
        this.err('shape', inp.name.span, e.message);
        return ERR;
      }
      throw e;
    }
  }

  // ================================================================ statements

  /** Run statements; returns the evaluated return statement if one ran. */
  private execStmts(frame: Frame, stmts: readonly A.Stmt[]): { stmt: A.ReturnStmt; values: Value[] } | undefined {
    for (const s of stmts) {
      if (++this.steps > LIMITS.maxSteps) throw new LimitExceeded(`elaboration takes more than ${LIMITS.maxSteps} steps; is a loop bound wrong?`);
      switch (s.kind) {
        case 'assign':
          frame.env.set(s.target.name, this.eval(frame, s.value));
          break;
        case 'return':
          return { stmt: s, values: s.items.map((i) => this.eval(frame, i.value)) };
        case 'if': {
          const c = this.condition(frame, s.cond);
          if (c === undefined) break;
          const r = c ? this.execStmts(frame, s.then) : s.else ? this.execStmts(frame, s.else) : undefined;
          if (r) return r;
          break;
        }
        case 'for': {
          const items = this.loopItems(frame, s);
          if (!items) break;
          for (const it of items) {
            frame.env.set(s.variable.name, it);
            const r = this.execStmts(frame, s.body);
            if (r) return r;
          }
          break;
        }
      }
    }
    return undefined;
  }

  /** A compile-time condition; undefined after an error. */
  private condition(frame: Frame, e: A.Expr): boolean | undefined {
    const v = this.eval(frame, e);
    if (v.k === 'bool') return v.v;
    if (v.k === 'err') return undefined;
    this.reportAt(
      'type',
      e.span,
      v.k === 'tensor'
        ? `the condition must be known at compile time, but it is ${describeValue(v)} (use select(cond, a, b) for tensors)`
        : `the condition must be true or false, got ${describeValue(v)}`,
    );
    return undefined;
  }

  private loopItems(frame: Frame, s: A.ForStmt): Value[] | undefined {
    const from = this.eval(frame, s.from);
    if (!s.to) {
      if (from.k === 'list') return [...from.v];
      if (from.k !== 'err') this.reportAt('type', s.from.span, `'for ${s.variable.name} in' needs a range (a .. b) or a list, got ${describeValue(from)}`);
      return undefined;
    }
    const to = this.eval(frame, s.to);
    if (from.k === 'err' || to.k === 'err') return undefined;
    for (const [v, e] of [
      [from, s.from],
      [to, s.to],
    ] as const) {
      if (v.k !== 'num' || !Number.isInteger(v.v)) {
        this.reportAt('type', e.span, `a range bound must be an integer, got ${describeValue(v)}`);
        return undefined;
      }
    }
    const a = (from as { v: number }).v;
    const b = (to as { v: number }).v;
    // a .. a is empty (zero layers is a model); an end before the start is a mistake (n_layers = -1), not a loop.
    if (b < a) {
      this.reportAt('type', s.to.span, `the range ${a} .. ${b} runs backwards (its end is below its start)`);
      return undefined;
    }
    if (b - a > LIMITS.maxLoopIterations) {
      this.reportAt('limit', s.to.span, `the loop would run ${b - a} times (at most ${LIMITS.maxLoopIterations} are allowed)`);
      return undefined;
    }
    const out: Value[] = [];
    for (let i = a; i < b; i++) out.push(num(i));
    return out;
  }

  // ================================================================ expressions

  /** Evaluate in a frame; `globals` resolves names not bound locally (hyperparameters and dims by default). */
  private evalIn(frame: Frame, e: A.Expr, globals: (n: string) => Value | undefined): Value {
    const saved = this.globalLookup;
    this.globalLookup = globals;
    try {
      return this.eval(frame, e);
    } finally {
      this.globalLookup = saved;
    }
  }

  /** Dims the model read while it was elaborated (a shape, a default like `arange(seq)`, an expression). */
  private readonly usedDims = new Set<string>();
  private globalLookup: (n: string) => Value | undefined = (n) => {
    const h = this.hparams.get(n);
    if (h !== undefined) return h;
    const d = this.dims.get(n);
    if (d !== undefined) this.usedDims.add(n);
    return d;
  };

  eval(frame: Frame, e: A.Expr): Value {
    try {
      return this.evalInner(frame, e);
    } catch (x) {
      if (x instanceof Poison) return ERR;
      throw x;
    }
  }

  private evalInner(frame: Frame, e: A.Expr): Value {
    switch (e.kind) {
      case 'number':
        return num(e.value);
      case 'string':
        return str(e.value);
      case 'bool':
        return bool(e.value);
      case 'dtype':
        return { k: 'dtype', v: e.value };
      case 'name': {
        const local = frame.env.get(e.name);
        if (local) return local;
        const g = this.globalLookup(e.name);
        if (g) return g;
        if (frame.locals.has(e.name)) {
          this.reportAt('unknown-name', e.span, `'${e.name}' is used before it is assigned`);
          return ERR;
        }
        if (frame.name === 'hparams') this.checkHparamName(e);
        else this.unknownNameAt(e, frame.locals);
        return ERR;
      }
      case 'list': {
        const items = e.items.map((x) => this.eval(frame, x));
        return items.some((x) => x.k === 'err') ? ERR : list(items);
      }
      case 'unary': {
        const x = this.eval(frame, e.operand);
        if (x.k === 'err') return ERR;
        const c = this.opCtx(frame.scope, e.span);
        if (e.op === '-') {
          if (x.k === 'num') return num(-x.v);
          return unary(c, 'neg', x, e.operand.span);
        }
        if (x.k === 'bool') return bool(!x.v);
        if (x.k === 'tensor') return c.op('not', [x.id]);
        return c.fail('type', e.operand.span, `'!' needs a bool, got ${describeValue(x)}`);
      }
      case 'binary': {
        const a = this.eval(frame, e.left);
        if (a.k === 'err') return ERR;
        // && and || short-circuit on compile-time bools.
        if (e.op === '&&' && a.k === 'bool' && !a.v) return a;
        if (e.op === '||' && a.k === 'bool' && a.v) return a;
        const b = this.eval(frame, e.right);
        if (b.k === 'err') return ERR;
        if ((e.op === '&&' || e.op === '||') && a.k === 'bool' && b.k === 'bool') return b;
        return binary(this.opCtx(frame.scope, e.span), e.op, a, b, e.left.span, e.right.span);
      }
      case 'if': {
        const c = this.condition(frame, e.cond);
        if (c === undefined) return ERR;
        return this.eval(frame, c ? e.then : e.else);
      }
      case 'call':
        return this.call(frame, e, frame.scope, undefined);
      case 'labelled': {
        const segs: string[] = [];
        for (const s of e.path) {
          if (s.kind === 'name') segs.push(s.name);
          else {
            const v = this.eval(frame, s.expr);
            if (v.k === 'err') return ERR;
            if ((v.k === 'num' && Number.isInteger(v.v) && v.v >= 0) || v.k === 'str') segs.push(String(v.v));
            else return this.fail('type', s.expr.span, `a label index must be a non-negative integer or a string, got ${describeValue(v)}`);
          }
        }
        const scope = frame.scope ? `${frame.scope}.${segs.join('.')}` : segs.join('.');
        const r = this.call(frame, e.call, scope, e);
        if (r.k === 'tensor') this.taps[scope] = r.id;
        return r;
      }
      case 'param':
        return this.param(frame, e);
      case 'member':
        return this.fail('type', e.member.span, `'.${e.member.name}': dots are only for scope labels (a.b: f(x)) and param names`);
      case 'index': {
        const o = this.eval(frame, e.object);
        const i = this.eval(frame, e.index);
        if (o.k === 'err' || i.k === 'err') return ERR;
        if (o.k !== 'list') {
          return this.fail(
            'type',
            e.span,
            o.k === 'tensor' ? `tensors are not indexed with [ ]; use slice(x, axis, start, end) or gather(table, indices)` : `cannot index ${describeValue(o)}`,
          );
        }
        if (i.k !== 'num' || !Number.isInteger(i.v)) return this.fail('type', e.index.span, `a list index must be an integer, got ${describeValue(i)}`);
        const k = i.v < 0 ? o.v.length + i.v : i.v;
        if (k < 0 || k >= o.v.length) return this.fail('type', e.index.span, `index ${i.v} is out of range for a list of ${o.v.length}`);
        return o.v[k];
      }
      case 'error':
        return ERR;
    }
  }

  private unknownNameAt(n: A.NameRef, locals: ReadonlySet<string>): void {
    const hint = this.blocks.has(n.name) || PRIMS.has(n.name) ? ` ('${n.name}' is a block; call it: ${n.name}(...))` : didYouMean(n.name, this.valueCandidates(locals));
    this.reportAt('unknown-name', n.span, `unknown name '${n.name}'${hint}`);
  }

  private param(frame: Frame, e: A.ParamExpr): Value {
    const local = e.path.map((s) => (s.kind === 'name' ? s.name : '')).join('.');
    const name = frame.scope ? `${frame.scope}.${local}` : local;
    const shape: number[] = [];
    for (const s of e.shape) {
      const v = this.eval(frame, s);
      if (v.k === 'err') return ERR;
      if (v.k === 'num' && Number.isInteger(v.v) && v.v >= 0) shape.push(v.v);
      else if (v.k === 'sym') return this.fail('type', s.span, `param '${name}' has the symbolic dimension '${v.v}'; parameter shapes must be numbers`);
      else return this.fail('type', s.span, `a dimension of param '${name}' must be a non-negative integer, got ${describeValue(v)}`);
    }
    const type: TensorType = { dtype: 'f32', shape };
    try {
      const id = this.builder.param(name, type, { scope: frame.scope, loc: spanLoc(e.span) });
      this.checkParamReuse(name, e);
      return { k: 'tensor', id, t: this.builder.type(id) };
    } catch (x) {
      if (x instanceof ShapeError) {
        const prev = this.paramSites.get(name);
        const again = prev && prev.expr === `${e.span.file}:${e.span.start}` && this.stack.length > 1;
        const hint = again ? ` (a second call of '${this.stack[this.stack.length - 1].name}' in the same scope declares the same name; give each call its own label)` : '';
        return this.fail('shape', e.span, x.message + hint);
      }
      throw x;
    }
  }

  /** Where each param name was first declared: the `param` expression and the chain of calls that reached it. */
  private readonly paramSites = new Map<string, { expr: string; chain: string; site?: A.Span }>();

  /**
   * Declaring a name again shares the tensor (tied weights; a layer reused in a loop). But the same `param`
   * expression reached through a *different* call — `rmsnorm(x, eps)` twice in one block without labels —
   * is almost always a forgotten label: both calls silently get one weight. Warn, at the second call.
   */
  private checkParamReuse(name: string, e: A.ParamExpr): void {
    const expr = `${e.span.file}:${e.span.start}`;
    const chain = this.stack.map((f) => (f.callSite ? `${f.callSite.file}:${f.callSite.start}` : '')).join('/');
    let site: A.Span | undefined;
    for (let i = this.stack.length - 1; i >= 0 && !site; i--) if (this.stack[i].callSite?.file === this.userFile) site = this.stack[i].callSite;
    const prev = this.paramSites.get(name);
    if (!prev) {
      this.paramSites.set(name, { expr, chain, site });
      return;
    }
    if (prev.expr !== expr || prev.chain === chain || !site) return;
    const block = this.stack[this.stack.length - 1].name;
    const notes = prev.site ? [this.diags.note(prev.site, 'the first call, which declared it')] : [];
    this.diags.add(
      'duplicate',
      site,
      `param '${name}' is declared again by this call of '${block}' in the same scope, so both calls share one tensor; give each call its own label (e.g. \`${block}_2: ${block}(...)\`) unless sharing is meant`,
      notes,
      'warning',
    );
  }

  // ================================================================ calls

  private call(frame: Frame, c: A.CallExpr, scope: string, label: A.LabelledCall | undefined): Value {
    if (c.callee.kind !== 'name') {
      if (c.callee.kind !== 'error') this.reportAt('type', c.callee.span, 'only blocks and primitives can be called');
      return ERR;
    }
    const name = c.callee.name;
    const callee: BlockInfo | Prim | undefined = this.blocks.get(name) ?? PRIMS.get(name);
    if (!callee) {
      this.reportAt('unknown-block', c.callee.span, `unknown block or primitive '${name}'${didYouMean(name, [...this.blocks.keys(), ...PRIMS.keys()])}`);
      return ERR;
    }
    const bound = this.bindArgs(callee, c);
    if (!bound) return ERR;
    const args: Value[] = [];
    for (const a of bound) {
      const v = a ? this.eval(frame, a.value) : NONE;
      if (v.k === 'err') return ERR;
      args.push(v);
    }
    const span = label ? label.span : c.span;
    if (!('decl' in callee)) {
      const prim = callee;
      const filled = args.map((v, i) => (bound[i] ? v : (prim.params[i].default as Value)));
      const ctx = this.opCtx(scope, span) as OpCtx & { name: string; args: Value[]; argSpans: A.Span[] };
      ctx.name = name;
      ctx.args = filled;
      ctx.argSpans = bound.map((a) => (a ? a.value.span : c.span));
      try {
        return prim.run(ctx as PrimCtx);
      } catch (x) {
        if (x instanceof Poison) return ERR;
        throw x;
      }
    }
    const b = callee;
    if (this.stack.some((f) => f.name === name && f.file === b.file)) {
      if (!this.staticRecursion) this.reportAt('recursion', c.callee.span, `block '${name}' calls itself (recursion is not allowed)`);
      return ERR;
    }
    if (this.stack.length > LIMITS.maxCallDepth) throw new LimitExceeded(`blocks are nested more than ${LIMITS.maxCallDepth} deep`);
    // Where errors inside the callee are reported when it lives in the prelude: `label: callee` or `callee`.
    const site = label ? this.mergeSpans(label.pathSpan, c.callee.span) : c.callee.span;
    const inner: Frame = { name, file: b.file, env: new Map(), locals: b.locals, scope, callSite: site };
    this.stack.push(inner);
    try {
      b.decl.params.forEach((p, i) => {
        let v = args[i];
        if (!bound[i]) v = p.default ? this.eval(inner, p.default) : ERR;
        inner.env.set(p.name.name, v);
      });
      const ret = this.execStmts(inner, b.decl.body);
      if (!ret) {
        this.reportAt('missing', this.closingBrace(b.decl.span), `block '${name}' ends without a return`);
        return ERR;
      }
      if (ret.stmt.items.length !== 1 || ret.stmt.items[0].name) {
        this.reportAt('type', ret.stmt.span, `a block returns one value (return [a, b] for several); named results are for forward`);
        return ERR;
      }
      return ret.values[0];
    } finally {
      this.stack.pop();
    }
  }

  /** What an op-building helper needs: new nodes go into `scope`, at `span`. */
  private opCtx(scope: string, span: A.Span): OpCtx {
    const loc = spanLoc(span);
    return {
      span,
      fail: (code, at, message) => this.fail(code, at, message),
      op: (name: string, inputs: readonly NodeId[], attrs: Attrs = {}): Value => {
        let id: NodeId;
        try {
          id = this.builder.op(name, inputs, attrs, { scope, loc });
        } catch (x) {
          if (x instanceof ShapeError) {
            const m = x.message;
            return this.fail('shape', span, m.startsWith(name) ? m : `${name}: ${m}`);
          }
          throw x;
        }
        if (this.builder.nodes.length > LIMITS.maxNodes) throw new LimitExceeded(`the graph has more than ${LIMITS.maxNodes} nodes; is a loop bound or layer count wrong?`);
        return { k: 'tensor', id, t: this.builder.type(id) };
      },
      constant: (value: number, dtype: DType): NodeId => this.builder.constant(value, dtype, [], { scope, loc }),
    };
  }

  // ================================================================ reporting

  private err(code: DiagnosticCode, span: A.Span, message: string): void {
    this.diags.add(code, span, message);
  }

  /** Report and abandon the current expression. */
  private fail(code: DiagnosticCode, span: A.Span, message: string): never {
    this.reportAt(code, span, message);
    throw new Poison();
  }

  /**
   * Report an error found while elaborating. Errors inside prelude blocks are reported at the innermost
   * call in the model file that led there (that is the line the user can change), with a note pointing
   * into the prelude.
   */
  private reportAt(code: DiagnosticCode, span: A.Span, message: string): void {
    if (span.file === this.userFile) return this.err(code, span, message);
    const notes: DiagnosticNote[] = [];
    for (let i = this.stack.length - 1; i >= 0; i--) {
      const f = this.stack[i];
      if (f.callSite && f.callSite.file === this.userFile) {
        const inner = this.stack[this.stack.length - 1];
        notes.push(this.diags.note(span, `in prelude block '${inner.name}'`));
        this.diags.add(code, f.callSite, `${message} (in prelude block '${inner.name}')`, notes);
        return;
      }
    }
    this.err(code, span, message);
  }

  private mergeSpans(a: A.Span, b: A.Span): A.Span {
    const src = this.diags.source(a.file);
    return src && a.file === b.file ? src.span(Math.min(a.start, b.start), Math.max(a.end, b.end)) : a;
  }

  private userStart(): A.Span {
    return { file: this.userFile, start: 0, end: 1, line: 1, col: 1, endLine: 1, endCol: 1 };
  }

  private userEnd(): A.Span {
    const src = this.diags.source(this.userFile);
    return src ? src.endSpan() : this.userStart();
  }

  /** The span of the last character of a declaration (its closing brace). */
  private closingBrace(span: A.Span): A.Span {
    const src = this.diags.source(span.file);
    return src ? src.span(Math.max(span.start, span.end - 1), span.end) : span;
  }
}

export type { Value };

/** The value at a dotted key path of a config object (`rope_parameters.rope_theta`); undefined where a level is missing. */
function configAt(cfg: unknown, key: readonly string[]): unknown {
  let x = cfg;
  for (const k of key) x = x !== null && typeof x === 'object' && !Array.isArray(x) ? (x as Record<string, unknown>)[k] : undefined;
  return x;
}
