/**
 * The decode step as a program: one new token per sequence against a KV cache held in fixed-size buffers that
 * are arguments and results of the program (what a JAX/MaxText serving loop compiles). Built from the fully
 * optimised one-token graph (seq = 1, attention fused) by rewriting each causal `fused_attention`:
 *
 *   cache.<scope>.k / .v   inputs [b, kv, L, d]: L = the context, or min(context, window) on a sliding-window
 *                          layer — a ring buffer that keeps only the last `window` positions;
 *   slot = pos mod L       the new keys/values are written there with `dynamic_update_slice` (in place in XLA);
 *   mask = slot ≤ pos      which slots hold a position yet (global: slot j is position j; ring: once pos ≥ L − 1
 *                          every slot holds one of the last L positions, exactly the window);
 *   fused_attention(q, k', v', mask)  with causal/window off (the mask says it all).
 *
 * The updated caches are outputs named like their inputs, so the partitioner gives them the input's layout and
 * the step can be fed its own results. `pos` is the one position of the new token (the `positions` input, the
 * same for the whole batch); it must stay below the context on global layers.
 */
import { freeze } from 'immer';
import { Graph, GraphOutput, NodeId } from '../../ir/types';
import { TpuError } from './errors';
import { applyRules, rule } from '../../passes/rewrite';
import { pat } from '../../passes/pattern';

export interface KvCacheBuffer {
  /** Input and output name, e.g. `cache.model.layers.0.self_attn.k`. */
  readonly name: string;
  readonly scope: string;
  /** Positions the buffer holds. */
  readonly length: number;
  /** 0 = global; else the buffer is a ring of the last `window` positions. */
  readonly window: number;
}

export interface DecodeStep {
  readonly graph: Graph;
  readonly caches: readonly KvCacheBuffer[];
}

/** A model without attention has nothing to decode against: each token is a forward step of its own. */
export function checkDecodable(g: Graph): void {
  if (!g.nodes.some((n) => n.op === 'fused_attention' || n.op === 'softmax')) {
    throw new TpuError('decode: the model has no attention, so a token depends on no earlier one and there is no KV cache to keep: plan it with --mode forward');
  }
}

export function decodeStep(g: Graph, o: { context: number }): DecodeStep {
  const ctx = o.context;
  if (!Number.isInteger(ctx) || ctx < 1) throw new TpuError(`decode step: the context must be a positive integer, got ${ctx}`);
  const max = g.dimBounds?.seq;
  if (max !== undefined && ctx > max) throw new TpuError(`decode step: a context of ${ctx} positions is above the model's bound seq <= ${max}`);
  const attn = g.nodes.filter((n) => n.op === 'fused_attention');
  checkDecodable(g);
  if (!attn.length) throw new TpuError('decode step: the graph has no fused_attention (the decode step needs the attention-fusion pass of the default pipeline)');
  const posIn = g.nodes.find((n) => n.op === 'input' && n.attrs.name === 'positions');
  if (!posIn) throw new TpuError("decode step: the graph has no 'positions' input (RoPE positions of the new token)");
  const pshape = posIn.type.shape;
  if (!pshape.every((d) => d === 1) || (posIn.type.dtype !== 'i32' && posIn.type.dtype !== 'i64')) {
    throw new TpuError(`decode step: 'positions' must be one integer position (seq = 1), got ${posIn.type.dtype}[${pshape.join(', ')}]`);
  }
  for (const n of attn) {
    if (n.inputs.length !== 3 || !n.attrs.causal) throw new TpuError(`decode step: fused_attention %${n.id} (${n.scope}) is not a plain causal attention (it has an explicit mask or is not causal)`);
  }

  const caches: KvCacheBuffer[] = [];
  const outs: { name: string; node: NodeId }[] = [];
  let pos: NodeId | undefined;
  const calls = new Map<string, number>();
  const rewritten = applyRules(g, [
    rule('kv-cache', pat.op('fused_attention', [pat.v('q'), pat.v('k'), pat.v('v')], { attrs: { causal: true } }), ({ q, k, v }, b, m) => {
      const n = b.node(m.root);
      const [B, KV, T, D] = b.type(k).shape;
      const DV = b.type(v).shape[3];
      if (T !== 1 || b.type(q).shape[2] !== 1) throw new TpuError(`decode step: attention ${n.scope} sees ${String(T)} new positions; build the graph with seq = 1`);
      const window = n.attrs.window as number;
      const L = window > 0 ? Math.min(ctx, window) : ctx;
      const i32 = (x: number) => b.constant(x, 'i32');
      // The position as a scalar: made once, shared by every layer.
      pos ??= b.op('cast', [b.op('reshape', [posIn.id], { shape: [] }, { scope: '' })], { dtype: 'i32' }, { scope: '' });
      const slot = L > 1 ? b.op('sub', [pos, b.op('mul', [b.op('div', [pos, i32(L)]), i32(L)])]) : i32(0);
      // One cache per attention call: a block called again under the same label (shared weights) gets `#2`, `#3`, ….
      const base = n.scope || `attention${n.id}`;
      const call = (calls.get(base) ?? 0) + 1;
      calls.set(base, call);
      const name = (x: string) => `cache.${base}${call > 1 ? `#${call}` : ''}.${x}`;
      const kc = b.input(name('k'), { dtype: b.type(k).dtype, shape: [B, KV, L, D] }, { place_at_use: true });
      const vc = b.input(name('v'), { dtype: b.type(v).dtype, shape: [B, KV, L, DV] }, { place_at_use: true });
      const k2 = b.op('dynamic_update_slice', [kc, k, slot], { axis: 2 });
      const v2 = b.op('dynamic_update_slice', [vc, v, slot], { axis: 2 });
      const held = b.op('compare', [b.op('iota', [], { shape: [L], axis: 0, dtype: 'i32' }), pos], { dir: 'le' });
      const mask = b.op('reshape', [held], { shape: [1, 1, 1, L] });
      outs.push({ name: name('k'), node: k2 }, { name: name('v'), node: v2 });
      const ring = window > 0 && ctx > window ? window : 0;
      caches.push({ name: name('k'), scope: n.scope, length: L, window: ring }, { name: name('v'), scope: n.scope, length: L, window: ring });
      return b.op('fused_attention', [q, k2, v2, mask], { ...n.attrs, causal: false, window: 0 });
    }),
  ]);
  const outputs: GraphOutput[] = [...rewritten.outputs, ...outs];
  return { graph: freeze({ ...rewritten, outputs }, true), caches };
}
