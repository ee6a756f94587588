/** What a pass is, what it sees while it runs, and what it leaves in the trace. */
import { Graph, NodeId } from '../ir/types';

/** One rewrite, as the visualizer shows it: which rule of which pass replaced which nodes with which. */
export interface TraceEntry {
  readonly pass: string;
  readonly rule: string;
  /** Nodes the rewrite removed (the matched root first). */
  readonly replaced: readonly NodeId[];
  /** Nodes it created that are in the result (the new root first). */
  readonly created: readonly NodeId[];
  /** Scope of the replaced root (new nodes take it). */
  readonly scope: string;
}

export interface PassContext {
  /** Name of the running pass (rewrites are recorded under it). */
  readonly pass: string;
  /** Record one rewrite in the trace (the rewrite engine does this for rule-based passes). */
  record(entry: Omit<TraceEntry, 'pass'>): void;
  /** A line of diagnostic output: kept in the pass's statistics (`PassStat.log`), shown by `lapidary compile` (text, --json, --trace). */
  log(message: string): void;
}

/**
 * A pass: a named graph → graph function. It must return the very same graph object when it changes
 * nothing, and may never mutate its input (graphs are frozen).
 */
export interface Pass {
  /** Lower-case words joined by '-' (e.g. `softcap-folding`): the name used by --passes, --no-pass, --pass-after. */
  readonly name: string;
  /** One line for `lapidary compile --list-passes` and docs. */
  readonly description: string;
  run(graph: Graph, ctx: PassContext): Graph;
  /** Where the pass comes from: 'builtin' or the plugin file. Filled in by the loader. */
  readonly origin?: string;
}

const NAME = /^[a-z][a-z0-9]*(-[a-z0-9]+)*$/;

/** Declare a pass (validates its shape so that a plugin's mistake is reported at load time, by name). */
export function definePass(p: Pass): Pass {
  if (!p || typeof p !== 'object') throw new TypeError('definePass expects an object {name, description, run}');
  if (typeof p.name !== 'string' || !NAME.test(p.name)) {
    throw new TypeError(`pass name ${JSON.stringify(p.name)} must be lower-case words joined by '-' (e.g. 'fuse-rmsnorm')`);
  }
  if (typeof p.run !== 'function') throw new TypeError(`pass '${p.name}' has no run(graph, ctx) function`);
  if (typeof p.description !== 'string' || !p.description) throw new TypeError(`pass '${p.name}' needs a one-line description`);
  return Object.freeze({ ...p });
}

export function isPass(x: unknown): x is Pass {
  return !!x && typeof x === 'object' && typeof (x as Pass).name === 'string' && typeof (x as Pass).run === 'function';
}
