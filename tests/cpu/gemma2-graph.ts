/**
 * A Gemma 2 graph built by hand with GraphBuilder from a HF config — exactly the primitive IR the front end
 * produces from gemma2.model + prelude.model (same ops, same order, same param names), so the CPU backend's
 * tests do not depend on the front end. `fused: true` builds attention as one `fused_attention` op (what the
 * passes produce), the form that decodes with a KV cache.
 */
import { GraphBuilder, Graph, NodeId } from '../../src/ir';

export interface Gemma2Config {
  vocab_size: number;
  hidden_size: number;
  intermediate_size: number;
  num_hidden_layers: number;
  num_attention_heads: number;
  num_key_value_heads: number;
  head_dim: number;
  query_pre_attn_scalar: number;
  sliding_window: number;
  attn_logit_softcapping: number;
  final_logit_softcapping: number;
  rms_norm_eps: number;
  rope_theta?: number;
  rope_parameters?: { rope_theta: number };
}

export function gemma2Graph(c: Gemma2Config, { fused = false } = {}): { graph: Graph; embedOut: NodeId } {
  const b = new GraphBuilder('gemma2');
  const D = c.hidden_size;
  const H = c.num_attention_heads;
  const KV = c.num_key_value_heads;
  const HD = c.head_dim;
  const theta = c.rope_parameters?.rope_theta ?? c.rope_theta ?? 10000;
  const f = (v: number) => b.constant(v, 'f32');
  const i32 = (v: number) => b.constant(v, 'i32');
  const op = (name: string, ins: NodeId[], attrs = {}) => b.op(name, ins, attrs);
  const linear = (x: NodeId, w: NodeId) => op('matmul', [x, w], { transpose_a: false, transpose_b: true });
  const ids = b.input('input_ids', { dtype: 'i32', shape: ['batch', 'seq'] });
  const positions = b.input('positions', { dtype: 'i32', shape: ['seq'] }, { default: 'arange' });

  const rmsnorm = (scope: string, x: NodeId) =>
    b.within(scope, () => {
      const w = b.param(`${scope}.weight`, { dtype: 'f32', shape: [D] });
      const ms = op('reduce', [op('mul', [x, x])], { kind: 'mean', axes: [-1], keepdims: true });
      return op('mul', [op('mul', [x, op('rsqrt', [op('add', [ms, f(c.rms_norm_eps)])])]), op('add', [f(1), w])]);
    });
  const softcap = (x: NodeId, cap: number) => op('mul', [f(cap), op('tanh', [op('div', [x, f(cap)])])]);
  const rope = (x: NodeId) => {
    const invFreq = op('div', [f(1), op('pow', [f(theta), op('div', [op('cast', [op('mul', [b.op('iota', [], { shape: [HD / 2], axis: 0, dtype: 'i32' }), i32(2)])], { dtype: 'f32' }), f(HD)])])]);
    const freqs = op('mul', [op('cast', [op('reshape', [positions], { shape: ['seq', 1] })], { dtype: 'f32' }), op('reshape', [invFreq], { shape: [1, HD / 2] })]);
    const emb = op('concat', [freqs, freqs], { axis: -1 });
    const x1 = op('slice', [x], { axis: -1, start: 0, end: HD / 2 });
    const x2 = op('slice', [x], { axis: -1, start: HD / 2, end: HD });
    return op('add', [op('mul', [x, op('cos', [emb])]), op('mul', [op('concat', [op('neg', [x2]), x1], { axis: -1 }), op('sin', [emb])])]);
  };
  const repeatKv = (x: NodeId, n: number) => {
    if (n === 1) return x;
    const r = op('broadcast', [op('reshape', [x], { shape: ['batch', KV, 1, 'seq', HD] })], { shape: ['batch', KV, n, 'seq', HD] });
    return op('reshape', [r], { shape: ['batch', KV * n, 'seq', HD] });
  };
  const heads = (x: NodeId, n: number) => op('transpose', [op('reshape', [x], { shape: ['batch', 'seq', n, HD] })], { perm: [0, 2, 1, 3] });
  const attention = (scope: string, x: NodeId, window: number) =>
    b.within(scope, () => {
      const p = (n: string, s: number[]) => b.param(`${scope}.${n}.weight`, { dtype: 'f32', shape: s });
      const q = rope(heads(linear(x, p('q_proj', [H * HD, D])), H));
      const k = rope(heads(linear(x, p('k_proj', [KV * HD, D])), KV));
      const v = heads(linear(x, p('v_proj', [KV * HD, D])), KV);
      const scale = c.query_pre_attn_scalar ** -0.5;
      let o: NodeId;
      if (fused) {
        o = op('fused_attention', [q, k, v], { scale, softcap: c.attn_logit_softcapping, causal: true, window, groups: H / KV });
      } else {
        let s = op('mul', [op('matmul', [q, op('transpose', [repeatKv(k, H / KV)], { perm: [0, 1, 3, 2] })]), f(scale)]);
        if (c.attn_logit_softcapping > 0) s = softcap(s, c.attn_logit_softcapping);
        const i = b.op('iota', [], { shape: ['seq', 'seq'], axis: 0, dtype: 'i32' });
        const j = b.op('iota', [], { shape: ['seq', 'seq'], axis: 1, dtype: 'i32' });
        let m = op('compare', [j, i], { dir: 'le' });
        if (window > 0) m = op('and', [m, op('compare', [op('sub', [i, j]), i32(window)], { dir: 'lt' })]);
        s = op('select', [m, s, f(-Infinity)]);
        o = op('matmul', [op('softmax', [s], { axis: -1 }), repeatKv(v, H / KV)]);
      }
      o = op('reshape', [op('transpose', [o], { perm: [0, 2, 1, 3] })], { shape: ['batch', 'seq', H * HD] });
      return linear(o, p('o_proj', [D, H * HD]));
    });
  const mlp = (scope: string, x: NodeId) =>
    b.within(scope, () => {
      const p = (n: string, s: number[]) => b.param(`${scope}.${n}.weight`, { dtype: 'f32', shape: s });
      const gate = linear(x, p('gate_proj', [c.intermediate_size, D]));
      const up = linear(x, p('up_proj', [c.intermediate_size, D]));
      return linear(op('mul', [op('gelu_tanh', [gate]), up]), p('down_proj', [D, c.intermediate_size]));
    });

  const embed = b.param('model.embed_tokens.weight', { dtype: 'f32', shape: [c.vocab_size, D] });
  let x = op('mul', [op('gather', [embed, ids]), f(Math.sqrt(D))]);
  const embedOut = x;
  const taps: Record<string, NodeId> = {};
  for (let l = 0; l < c.num_hidden_layers; l++) {
    const s = `model.layers.${l}`;
    x = b.within(s, () => {
      const window = l % 2 === 0 ? c.sliding_window : 0;
      const h = attention(`${s}.self_attn`, rmsnorm(`${s}.input_layernorm`, x), window);
      const y = op('add', [x, rmsnorm(`${s}.post_attention_layernorm`, h)]);
      const h2 = mlp(`${s}.mlp`, rmsnorm(`${s}.pre_feedforward_layernorm`, y));
      return op('add', [y, rmsnorm(`${s}.post_feedforward_layernorm`, h2)]);
    });
    taps[s] = x;
  }
  x = rmsnorm('model.norm', x);
  taps['model.norm'] = x;
  const logits = softcap(linear(x, embed), c.final_logit_softcapping);
  return { graph: b.build({ outputs: [{ name: 'logits', node: logits }], taps, dims: ['batch', 'seq'] }), embedOut };
}
