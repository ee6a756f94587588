import { defineOp } from '../op';
import { inferFloatUnary } from './_kinds';

// gelu_tanh(x) = 0.5 x (1 + tanh(c (x + k x^3))), c = sqrt(2 / pi), k = 0.044715 (PyTorch's approximate='tanh').
const C = Math.sqrt(2 / Math.PI);
const K = 0.044715;

export const gelu_tanh = defineOp({
  name: 'gelu_tanh',
  doc: 'GELU, tanh approximation: 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))',
  arity: 1,
  elementwise: true,
  infer: (t) => inferFloatUnary('gelu_tanh', t),
  cpu: ({ tf }, [x]) => {
    const inner = tf.mul(tf.add(x, tf.mul(tf.mul(tf.mul(x, x), x), K)), C);
    return tf.mul(tf.mul(x, 0.5), tf.add(tf.tanh(inner), 1));
  },
  xla: (b, [x]) => {
    const c = (v: number) => b.constant(v, x.type);
    const x3 = b.binary('multiply', b.binary('multiply', x, x), x);
    const inner = b.binary('multiply', b.binary('add', x, b.binary('multiply', x3, c(K))), c(C));
    return b.binary('multiply', b.binary('multiply', x, c(0.5)), b.binary('add', b.unary('tanh', inner), c(1)));
  },
  vjp: (g, n, dy) => {
    // d/dx = 0.5 (1 + t) + 0.5 x (1 - t^2) c (1 + 3 k x^2), t = tanh(c (x + k x^3))
    const x = n.inputs[0];
    const dt = g.type(x).dtype;
    const k = (v: number) => g.constant(v, dt);
    const m = (a: number, b: number) => g.op('mul', [a, b]);
    const a = (p: number, q: number) => g.op('add', [p, q]);
    const x2 = m(x, x);
    const t = g.op('tanh', [m(a(x, m(m(x2, x), k(K))), k(C))]);
    const left = m(k(0.5), a(k(1), t));
    const sech2 = g.op('sub', [k(1), m(t, t)]);
    const right = m(m(m(k(0.5), x), sech2), m(k(C), a(k(1), m(k(3 * K), x2))));
    return [m(dy, a(left, right))];
  },
});
