/**
 * Hand-built graphs for the visualizer's unit tests: the shape of a Gemma-style decoder (scopes
 * `model.layers.i.{input_layernorm,self_attn,mlp,...}`, HF weight names), small and independent of the front end.
 */
import { GraphBuilder, Graph, NodeId } from '../../src/ir';

export interface ToyOpts {
  layers?: number;
  d?: number;
  /** Inserted into every weight name and layer scope (to test escaping). */
  evil?: string;
}

export function toyDecoder({ layers = 2, d = 8, evil = '' }: ToyOpts = {}): Graph {
  const b = new GraphBuilder('toy');
  const f32 = (shape: (number | string)[]) => ({ dtype: 'f32' as const, shape });
  const ids = b.input('input_ids', { dtype: 'i32', shape: ['batch', 'seq'] });
  const embed = b.within('model.embed_tokens', () => b.param('model.embed_tokens.weight', f32([32, d])));
  let x = b.within('model', () => b.op('mul', [b.op('gather', [embed, ids]), b.constant(Math.sqrt(d))]));
  const rms = (scope: string, h: NodeId) =>
    b.within(scope, () => {
      const w = b.param(`${scope}.weight`, f32([d]));
      const ms = b.op('reduce', [b.op('mul', [h, h])], { kind: 'mean', axes: [-1], keepdims: true });
      const r = b.op('rsqrt', [b.op('add', [ms, b.constant(1e-6)])]);
      return b.op('mul', [b.op('mul', [h, r]), b.op('add', [b.constant(1), w])]);
    });
  const linear = (h: NodeId, name: string, out: number, inn: number) => b.op('matmul', [h, b.param(name, f32([out, inn]))], { transpose_b: true });
  for (let i = 0; i < layers; i++) {
    const L = `model.layers.${i}${evil}`;
    b.within(L, () => {
      const h = rms(`${L}.input_layernorm`, x);
      const a = b.within(`${L}.self_attn`, () => {
        const q = linear(h, `${L}.self_attn.q_proj.weight`, d, d);
        const k = linear(h, `${L}.self_attn.k_proj.weight`, d, d);
        const v = linear(h, `${L}.self_attn.v_proj.weight`, d, d);
        const s = b.op('mul', [b.op('matmul', [q, k], { transpose_b: true }), b.constant(0.5)]);
        const p = b.op('softmax', [s], { axis: -1 });
        return linear(b.op('matmul', [p, v]), `${L}.self_attn.o_proj.weight`, d, d);
      });
      x = b.op('add', [x, rms(`${L}.post_attention_layernorm`, a)]);
      const h2 = rms(`${L}.pre_feedforward_layernorm`, x);
      const m = b.within(`${L}.mlp`, () => {
        const gate = linear(h2, `${L}.mlp.gate_proj.weight`, 2 * d, d);
        const up = linear(h2, `${L}.mlp.up_proj.weight`, 2 * d, d);
        return linear(b.op('mul', [b.op('gelu_tanh', [gate]), up]), `${L}.mlp.down_proj.weight`, d, 2 * d);
      });
      x = b.op('add', [x, rms(`${L}.post_feedforward_layernorm`, m)]);
    });
  }
  x = rms('model.norm', x);
  const logits = b.within('lm_head', () => b.op('matmul', [x, embed], { transpose_b: true }));
  return b.build({ outputs: [{ name: 'logits', node: logits }], dims: ['batch', 'seq'], hparams: { d_model: d, n_layers: layers } });
}
