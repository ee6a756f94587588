/** Parameter counting. Embedding parameters are the params used as the table of a gather. */
import { Graph } from './types';
import { getNode, paramNodes } from './graph';
import { staticNumel } from './shape';

export interface ParamCount {
  readonly params: number;
  readonly embedding_params: number;
  readonly tensors: number;
}

export function countParams(g: Graph): ParamCount {
  const embed = new Set<number>();
  for (const n of g.nodes) if (n.op === 'gather' && getNode(g, n.inputs[0]).op === 'param') embed.add(n.inputs[0]);
  let params = 0;
  let embedding = 0;
  const ps = paramNodes(g);
  for (const p of ps) {
    const k = staticNumel(p.type.shape);
    if (k === undefined) throw new Error(`param '${String(p.attrs.name)}' has a symbolic shape`);
    params += k;
    if (embed.has(p.id)) embedding += k;
  }
  return { params, embedding_params: embedding, tensors: ps.length };
}
