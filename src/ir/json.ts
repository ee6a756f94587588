/** JSON (de)serialisation of graphs that round-trips: fromJSON(toJSON(g)) is structurally equal to g and verifies. */
import { freeze } from 'immer';
import { Graph } from './types';
import { verify } from './verify';

export const IR_FORMAT = 'lapidary-ir';
export const IR_VERSION = 1;

export function toJSON(g: Graph): object {
  return { format: IR_FORMAT, version: IR_VERSION, ...g };
}

export function graphToJSONText(g: Graph): string {
  return JSON.stringify(toJSON(g), null, 1);
}

export function fromJSON(data: unknown): Graph {
  const d = data as Record<string, unknown>;
  if (!d || typeof d !== 'object' || d.format !== IR_FORMAT) throw new Error(`not a ${IR_FORMAT} document`);
  if (d.version !== IR_VERSION) throw new Error(`unsupported ${IR_FORMAT} version ${String(d.version)} (this is ${IR_VERSION})`);
  const { format: _f, version: _v, ...rest } = d;
  const g = freeze(rest as unknown as Graph, true);
  if (!Array.isArray(g.nodes) || !Array.isArray(g.outputs)) throw new Error('graph JSON needs nodes and outputs arrays');
  verify(g);
  return g;
}
