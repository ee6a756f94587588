/** A readable text form of the IR: one node per line, grouped under scope headers. */
import { AttrValue, Graph, Node } from './types';
import { fmtType } from './shape';

function fmtAttr(v: AttrValue): string {
  if (Array.isArray(v)) return `[${v.map(fmtAttr).join(', ')}]`;
  if (v !== null && typeof v === 'object') return `{${Object.entries(v).map(([k, x]) => `${k}: ${fmtAttr(x as AttrValue)}`).join(', ')}}`;
  if (typeof v === 'string') return JSON.stringify(v);
  return String(v);
}

const HIDDEN = new Set(['dtype', 'shape']);

export function printNode(n: Node): string {
  const attrs = Object.entries(n.attrs)
    .filter(([k]) => !(HIDDEN.has(k) && (n.op === 'param' || n.op === 'input' || n.op === 'constant')))
    .map(([k, v]) => `${k}=${fmtAttr(v)}`);
  const args = [...n.inputs.map((i) => `%${i}`), ...attrs].join(', ');
  return `%${n.id} = ${n.op}(${args}) : ${fmtType(n.type)}`;
}

export function printGraph(g: Graph): string {
  const lines: string[] = [];
  const head = [`graph ${g.name}`];
  if (g.variant) head.push(`variant ${JSON.stringify(g.variant)}`);
  if (g.dims.length) head.push(`dims ${g.dims.join(', ')}`);
  lines.push(head.join('  ') + ' {');
  let scope: string | undefined;
  for (const n of g.nodes) {
    if (n.scope !== scope) {
      scope = n.scope;
      lines.push(`  # ${scope || '<root>'}`);
    }
    lines.push(`  ${printNode(n)}`);
  }
  for (const o of g.outputs) lines.push(`  return ${o.name} = %${o.node}`);
  lines.push('}');
  return lines.join('\n') + '\n';
}
