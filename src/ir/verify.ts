/** The IR verifier: single definitions, defined-before-use (so acyclic), known ops, types that match their rules. */
import { Graph } from './types';
import { hasOp, inferType } from './op';
import { fmtType, typeEq } from './shape';

export interface VerifyProblem {
  readonly node?: number;
  readonly message: string;
}

export class VerifyError extends Error {
  constructor(
    readonly problems: readonly VerifyProblem[],
    readonly pass?: string,
  ) {
    super(
      `${pass ? `after pass '${pass}': ` : ''}IR verification failed: ${problems
        .slice(0, 5)
        .map((p) => (p.node !== undefined ? `%${p.node}: ` : '') + p.message)
        .join('; ')}${problems.length > 5 ? ` (+${problems.length - 5} more)` : ''}`,
    );
    this.name = 'VerifyError';
  }
}

export function verifyProblems(g: Graph): VerifyProblem[] {
  const out: VerifyProblem[] = [];
  const seen = new Map<number, import('./types').Node>();
  for (const n of g.nodes) {
    if (seen.has(n.id)) out.push({ node: n.id, message: 'defined twice' });
    if (n.id >= g.nextId) out.push({ node: n.id, message: `id is not below nextId ${g.nextId}` });
    if (!hasOp(n.op)) {
      out.push({ node: n.id, message: `unknown op '${n.op}'` });
      seen.set(n.id, n);
      continue;
    }
    const ins = [];
    let ok = true;
    for (const i of n.inputs) {
      const d = seen.get(i);
      if (!d) {
        out.push({ node: n.id, message: `uses %${i}, which is not defined before it (dangling use or cycle)` });
        ok = false;
      } else ins.push(d.type);
    }
    if (ok) {
      try {
        const t = inferType(n.op, ins, n.attrs);
        if (!typeEq(t, n.type)) out.push({ node: n.id, message: `${n.op} has type ${fmtType(n.type)} but its rule gives ${fmtType(t)}` });
      } catch (e) {
        out.push({ node: n.id, message: `${n.op}: ${(e as Error).message}` });
      }
    }
    seen.set(n.id, n);
  }
  const outNames = new Set<string>();
  for (const o of g.outputs) {
    if (!seen.has(o.node)) out.push({ message: `output '${o.name}' refers to missing node %${o.node}` });
    if (outNames.has(o.name)) out.push({ message: `output '${o.name}' is defined twice` });
    outNames.add(o.name);
  }
  for (const [s, id] of Object.entries(g.taps)) if (!seen.has(id)) out.push({ message: `tap '${s}' refers to missing node %${id}` });
  const params = new Set<string>();
  for (const n of g.nodes)
    if (n.op === 'param') {
      const name = String(n.attrs.name);
      if (params.has(name)) out.push({ node: n.id, message: `param '${name}' is declared twice` });
      params.add(name);
    }
  return out;
}

/** Throws VerifyError (naming `pass` when given) if the graph breaks an invariant. */
export function verify(g: Graph, pass?: string): void {
  const p = verifyProblems(g);
  if (p.length) throw new VerifyError(p, pass);
}
