/** The IR verifier: single definitions, defined-before-use (so acyclic), known ops, types that match their rules. */
import { Graph, Node, TensorType } from './types';
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

/**
 * A graph that passed verification, as its nodes by id. Verifying a later version of the graph against it
 * skips the type rule of each node that is the very same (frozen) node object with inputs of the very same
 * types: the rule would be given exactly what it was given then, and agreed. Every other check still runs on
 * every node, so the problems found are the same as verifying from scratch.
 */
export type VerifiedNodes = readonly (Node | undefined)[];

export function verifyProblems(g: Graph): VerifyProblem[] {
  return verifyGraph(g).problems;
}

/**
 * The problems in `g`, and its nodes by id (to verify the next version of `g` against, if there are none).
 * With `verified` (an earlier version of the graph that passed), only new or changed nodes are re-typed.
 */
export function verifyGraph(g: Graph, verified?: VerifiedNodes): { problems: VerifyProblem[]; nodes: VerifiedNodes } {
  const out: VerifyProblem[] = [];
  const seen = new NodeIndex(g.nextId);
  // indexed loops, not for..of: this runs over every node after every pass, and the iterators were garbage
  const nodes = g.nodes;
  for (let k = 0; k < nodes.length; k++) {
    const n = nodes[k];
    if (seen.get(n.id) !== undefined) out.push({ node: n.id, message: 'defined twice' });
    if (n.id >= g.nextId) out.push({ node: n.id, message: `id is not below nextId ${g.nextId}` });
    if (!hasOp(n.op)) {
      out.push({ node: n.id, message: `unknown op '${n.op}'` });
      seen.set(n.id, n);
      continue;
    }
    const ins = inputTypes(n, seen, out);
    if (ins && !(verified && typedBefore(n, ins, verified))) {
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
    if (seen.get(o.node) === undefined) out.push({ message: `output '${o.name}' refers to missing node %${o.node}` });
    if (outNames.has(o.name)) out.push({ message: `output '${o.name}' is defined twice` });
    outNames.add(o.name);
  }
  for (const [s, id] of Object.entries(g.taps)) if (seen.get(id) === undefined) out.push({ message: `tap '${s}' refers to missing node %${id}` });
  const params = new Set<string>();
  for (let k = 0; k < nodes.length; k++) {
    const n = nodes[k];
    if (n.op === 'param') {
      const name = String(n.attrs.name);
      if (params.has(name)) out.push({ node: n.id, message: `param '${name}' is declared twice` });
      params.add(name);
    }
  }
  return { problems: out, nodes: seen.byId };
}

/**
 * Nodes by id, as a Map keyed by the id as given would hold them: small non-negative integer ids in an array
 * (sized for the ids below nextId), anything else (a malformed graph's '1', -1, 2.5) in a Map of its own.
 */
class NodeIndex {
  readonly byId: (Node | undefined)[];
  private other: Map<unknown, Node> | undefined;
  constructor(nextId: number) {
    this.byId = Number.isSafeInteger(nextId) && nextId > 0 ? new Array(nextId) : [];
  }
  get(id: unknown): Node | undefined {
    return isIndex(id) ? this.byId[id] : this.other?.get(id);
  }
  set(id: unknown, n: Node): void {
    if (isIndex(id)) this.byId[id] = n;
    else (this.other ??= new Map()).set(id, n);
  }
}

const isIndex = (id: unknown): id is number => typeof id === 'number' && Number.isSafeInteger(id) && id >= 0;

/**
 * Whether `n` is a node of the verified graph whose inputs there had the very types `ins` (so its type rule passed
 * on them). Only frozen data is trusted: a node, attribute or type that could have been changed in place since
 * (a pass may return nodes it did not freeze) is typed again.
 */
function typedBefore(n: Node, ins: readonly TensorType[], verified: VerifiedNodes): boolean {
  if (!isIndex(n.id) || verified[n.id] !== n || !Object.isFrozen(n) || !Object.isFrozen(n.inputs) || !frozenType(n.type) || !deepFrozen(n.attrs)) return false;
  for (let k = 0; k < ins.length; k++) {
    const i = n.inputs[k];
    if (!isIndex(i) || verified[i]?.type !== ins[k] || !frozenType(ins[k])) return false;
  }
  return true;
}

const frozenType = (t: TensorType) => Object.isFrozen(t) && Object.isFrozen(t.shape);

function deepFrozen(v: unknown): boolean {
  if (typeof v !== 'object' || v === null) return true;
  if (!Object.isFrozen(v)) return false;
  for (const k in v) if (!deepFrozen((v as Record<string, unknown>)[k])) return false;
  return true;
}

/** The types of `n`'s inputs, or undefined (with a problem per dangling input) when one is not defined before it. */
function inputTypes(n: Node, seen: NodeIndex, out: VerifyProblem[]): TensorType[] | undefined {
  const ins: TensorType[] = new Array(n.inputs.length);
  let ok = true;
  for (let k = 0; k < n.inputs.length; k++) {
    const i = n.inputs[k];
    const d = seen.get(i);
    if (!d) {
      out.push({ node: n.id, message: `uses %${i}, which is not defined before it (dangling use or cycle)` });
      ok = false;
    } else ins[k] = d.type;
  }
  return ok ? ins : undefined;
}

/** Throws VerifyError (naming `pass` when given) if the graph breaks an invariant. */
export function verify(g: Graph, pass?: string): void {
  const p = verifyProblems(g);
  if (p.length) throw new VerifyError(p, pass);
}
