/**
 * The pass manager: runs a pipeline, verifies the IR after every pass that changed it (an error names the
 * pass and the broken invariant), times each pass, counts nodes, collects the rewrite trace and each pass's
 * `ctx.log` lines, and hands the graph after each pass to an `after` hook (the CLI's --print-after / --dump-dir).
 */
import { Graph, Node, NodeId } from '../ir/types';
import { verifyGraph, VerifiedNodes, VerifyError, VerifyProblem } from '../ir/verify';
import { fmtType, typeEq } from '../ir/shape';
import { Pass, PassContext, TraceEntry } from './types';
import { locatePluginError } from './plugin';
import { freezeDeep } from '../ir/freeze';

export interface PassStat {
  readonly name: string;
  /** Wall time of the pass itself (verification excluded). */
  readonly ms: number;
  readonly nodes_before: number;
  readonly nodes_after: number;
  readonly changed: boolean;
  /** Rewrites the pass recorded in the trace. */
  readonly rewrites: number;
  /** Time spent verifying the pass's result. */
  readonly verify_ms: number;
  /** The lines the pass wrote with `ctx.log`, in order. */
  readonly log: readonly string[];
}

export interface PipelineResult {
  readonly graph: Graph;
  readonly stats: readonly PassStat[];
  readonly trace: readonly TraceEntry[];
  /** Every pass's `ctx.log` lines, as 'pass: message' (per pass: `stats[i].log`). */
  readonly log: readonly string[];
}

export interface PipelineOptions {
  /** Verify after each pass that changed the graph (default true). */
  readonly verify?: boolean;
  /** Called after each pass with its result. */
  readonly after?: (pass: Pass, graph: Graph, stat: PassStat, index: number) => void;
}

/** A pass failed: it threw, returned something that is not a graph, or broke an IR invariant. */
export class PassError extends Error {
  constructor(
    readonly pass: string,
    readonly origin: string | undefined,
    message: string,
    override readonly cause?: unknown,
  ) {
    super(`pass '${pass}'${origin && origin !== 'builtin' ? ` (from ${origin})` : ''} ${message}`);
    this.name = 'PassError';
  }
}

function looksLikeGraph(x: unknown): x is Graph {
  const g = x as Graph;
  return !!g && typeof g === 'object' && Array.isArray(g.nodes) && Array.isArray(g.outputs) && typeof g.taps === 'object' && typeof g.nextId === 'number';
}

/** The nodes of `g` with the given ids (only those: the graph may be large and the ids few). */
function nodesWithIds(g: Graph, ids: ReadonlySet<NodeId>): Map<NodeId, Node> {
  const m = new Map<NodeId, Node>();
  for (let k = 0; k < g.nodes.length; k++) if (ids.has(g.nodes[k].id)) m.set(g.nodes[k].id, g.nodes[k]);
  return m;
}

/** A pass keeps the graph's interface: the same outputs with the same types, and every tap. */
function interfaceProblems(g: Graph, out: Graph): VerifyProblem[] {
  const problems: VerifyProblem[] = [];
  const want = new Map(g.outputs.map((o) => [o.name, o.node]));
  const gm = nodesWithIds(g, new Set(want.values()));
  const om = nodesWithIds(out, new Set(out.outputs.map((o) => o.node)));
  for (const [name, id] of want) {
    const o = out.outputs.find((x) => x.name === name);
    if (!o) problems.push({ message: `output '${name}' disappeared` });
    else if (om.has(o.node) && !typeEq(om.get(o.node)!.type, gm.get(id)!.type)) {
      problems.push({ message: `output '${name}' changed type from ${fmtType(gm.get(id)!.type)} to ${fmtType(om.get(o.node)!.type)}` });
    }
  }
  for (const o of out.outputs) if (!want.has(o.name)) problems.push({ message: `new output '${o.name}' appeared` });
  for (const s of Object.keys(g.taps)) if (!(s in out.taps)) problems.push({ message: `tap '${s}' disappeared` });
  return problems;
}

/** Run `passes` in order on `graph`. Throws PassError naming the pass on any failure. */
export function runPipeline(graph: Graph, passes: readonly Pass[], opts: PipelineOptions = {}): PipelineResult {
  const stats: PassStat[] = [];
  const trace: TraceEntry[] = [];
  const log: string[] = [];
  let g = graph;
  // the last graph that passed verification: the next verification re-types only the nodes changed since
  let verified: VerifiedNodes | undefined;
  passes.forEach((pass, index) => {
    const mine: TraceEntry[] = [];
    const lines: string[] = [];
    const ctx: PassContext = {
      pass: pass.name,
      record: (e) => void mine.push({ pass: pass.name, rule: e.rule, replaced: [...e.replaced], created: [...e.created], scope: e.scope }),
      log: (m) => {
        lines.push(String(m));
        log.push(`${pass.name}: ${m}`);
      },
    };
    const before = g.nodes.length;
    const t0 = performance.now();
    let out: unknown;
    try {
      out = pass.run(g, ctx);
    } catch (e) {
      const msg = (e as Error)?.message ?? String(e);
      // Writing into the frozen input graph is the classic first mistake: say what to do instead.
      const frozen = e instanceof TypeError && /read[- ]only|not extensible|Cannot (add|delete|assign|define) property|frozen/i.test(msg);
      const where = pass.origin && pass.origin !== 'builtin' ? locatePluginError(e) : undefined;
      throw new PassError(pass.name, pass.origin, `failed${where ? ` at ${where}` : ''}: ${msg}${frozen ? ' (graphs are frozen: return a new graph — e.g. from applyRules or GraphBuilder.from(graph) — instead of changing the input)' : ''}`, e);
    }
    const ms = performance.now() - t0;
    if (out && typeof (out as { then?: unknown }).then === 'function') {
      throw new PassError(pass.name, pass.origin, 'returned a Promise: passes run synchronously, so run(graph, ctx) must return the graph itself (no async)');
    }
    if (!looksLikeGraph(out)) throw new PassError(pass.name, pass.origin, `returned ${out === undefined ? 'undefined' : out === null ? 'null' : typeof out}, not a graph (a pass returns the input graph when it changes nothing)`);
    const changed = out !== g;
    let verifyMs = 0;
    if (changed && opts.verify !== false) {
      const v0 = performance.now();
      const v = verifyGraph(out, verified);
      const problems = [...v.problems, ...interfaceProblems(g, out)];
      verifyMs = performance.now() - v0;
      if (problems.length) throw new PassError(pass.name, pass.origin, `broke the IR: ${new VerifyError(problems).message}`);
      verified = v.nodes;
    }
    if (changed && !Object.isFrozen(out)) out = freezeDeep(out as Graph);
    g = out as Graph;
    trace.push(...mine);
    const stat: PassStat = { name: pass.name, ms, nodes_before: before, nodes_after: g.nodes.length, changed, rewrites: mine.length, verify_ms: verifyMs, log: lines };
    stats.push(stat);
    opts.after?.(pass, g, stat, index);
  });
  return { graph: g, stats, trace, log };
}
