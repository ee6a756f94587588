/** Diagnostics: one test per error class, several errors per run, and the printed caret format. */
import { compileModel, formatDiagnostic, formatDiagnostics, modelInfo } from '../../grammar';
import { MAX_CHAIN, MAX_NESTING } from '../../grammar/parser';
import { levenshtein, suggest, MAX_ERRORS, SNIPPET_WIDTH } from '../../grammar/diagnostics';
import { GEMMA2, errors, model, read } from './helpers';

const only = (ds: ReturnType<typeof errors>) => {
  expect(ds.map((d) => d.message)).toHaveLength(1);
  return ds[0];
};

describe('format', () => {
  test('file:line:col, the source line without its indentation, and a caret underline', () => {
    const src = GEMMA2.replace('head_dim = 128; query_scalar', 'head_dimm = 128; query_scalar');
    const d = only(errors(src, 'gemma2.model', { variant: '27b' }));
    expect(formatDiagnostic(d)).toBe(
      [
        "gemma2.model:29:17: error: unknown hyperparameter 'head_dimm' in variant 27b (did you mean 'head_dim'?)",
        '    head_dimm = 128; query_scalar = d_model / n_heads }',
        '    ^~~~~~~~~',
      ].join('\n'),
    );
    expect(d).toMatchObject({ code: 'unknown-hparam', line: 29, col: 17, length: 9 });
  });

  test('errors inside prelude blocks point at the call in the model file, with a note into the prelude', () => {
    const src = GEMMA2.replace('n_heads      = 8', 'n_heads      = 7');
    const d = only(errors(src, 'gemma2.model'));
    expect(d.file).toBe('gemma2.model');
    expect(d.message).toMatch(/\(in prelude block 'repeat_kv'\)$/);
    expect(formatDiagnostic(d).split('\n').slice(1, 3)).toEqual([
      '    h = self_attn: attention(h, positions, heads = n_heads, kv_heads = n_kv_heads, head_dim = head_dim,',
      '        ^' + '~'.repeat('self_attn: attention'.length - 1),
    ]);
    expect(d.notes[0]).toMatchObject({ file: 'prelude.model', message: "in prelude block 'repeat_kv'" });
  });

  test('formatDiagnostics joins with newlines; no stack traces', () => {
    const ds = errors(model('  return y = nope'));
    const text = formatDiagnostics(ds);
    expect(text.endsWith('\n')).toBe(true);
    expect(text).not.toMatch(/\n\s+at /);
  });
});

describe('syntax errors', () => {
  test('several syntax errors in one run, each at its place', () => {
    const src = `model x
hparams { a = 1 b = }
block f(x) {
  y = x + * 2
  return y
}
block g(x) { return x ] }
forward(ids: i32[4]) {
  h = f(ids @ )
  return logits = h
`;
    const ds = errors(src);
    expect(ds.every((d) => d.code === 'syntax')).toBe(true);
    expect(ds.map((d) => [d.line, d.col])).toEqual([
      [2, 21],
      [4, 11],
      [7, 23],
      [9, 13],
      [10, 20],
    ]);
    expect(ds[1].message).toBe("expected an expression but found '*'");
    expect(ds[2].message).toBe("expected '}' but found ']'");
    expect(ds[3].message).toBe('unexpected character "@"');
    expect(ds[4].message).toBe("expected '}' but found the end of the file");
  });

  test('junk between declarations is skipped and parsing resumes at the next declaration', () => {
    const ds = errors(`model x\n) ) )\nblock f( { }\nforward(x: f32[2]) { return x }`);
    expect(ds.map((d) => d.line)).toEqual([2, 3]);
  });

  test('a label must be a scope path', () => {
    const d = only(errors(model('  return y = f(x): rmsnorm(x, 1e-6)')));
    expect(d.message).toMatch(/a label must be a scope path/);
  });
});

/** 1-based line of the first occurrence of `text` in `src`. */
const lineOf = (src: string, text: string) => src.slice(0, src.indexOf(text)).split('\n').length;

describe('name errors with suggestions', () => {
  test('unknown value name', () => {
    const d = only(errors(GEMMA2.replace('rmsnorm(x, eps)\n  h = mlp', 'rmsnorm(x, epss)\n  h = mlp'), 'gemma2.model'));
    expect(d).toMatchObject({ code: 'unknown-name', message: "unknown name 'epss' (did you mean 'eps'?)", line: lineOf(GEMMA2, 'rmsnorm(x, eps)\n  h = mlp'), col: 45 });
  });

  test('unknown block or primitive (a transposition is one edit)', () => {
    const d = only(errors(GEMMA2.replace('mlp: geglu(', 'mlp: gelgu('), 'gemma2.model'));
    expect(d).toMatchObject({ code: 'unknown-block', message: "unknown block or primitive 'gelgu' (did you mean 'geglu'?)" });
  });

  test('unknown primitive op', () => {
    const d = only(errors(model('  return y = softmaxx(x, axis = -1)')));
    expect(d.message).toBe("unknown block or primitive 'softmaxx' (did you mean 'softmax'?)");
  });

  test('unknown hyperparameter in an hparam expression', () => {
    const d = only(errors(GEMMA2.replace('query_scalar = d_model / n_heads', 'query_scalar = d_modle / n_heads'), 'gemma2.model'));
    expect(d.message).toBe("unknown hyperparameter 'd_modle' (did you mean 'd_model'?)");
  });

  test('unknown variant lists the variants', () => {
    const d = only(errors(GEMMA2, 'gemma2.model', { variant: '27' }));
    expect(d).toMatchObject({ code: 'unknown-variant', message: "unknown variant '27' (did you mean '27b'?); the variants are '2b', '9b', '27b'" });
  });

  test('config mapping to an unknown hyperparameter', () => {
    const d = only(errors(GEMMA2.replace('-> d_ff', '-> dff'), 'gemma2.model'));
    expect(d).toMatchObject({ code: 'unknown-hparam', message: "config maps 'intermediate_size' to unknown hyperparameter 'dff' (did you mean 'd_ff'?)" });
  });

  test('unknown dim binding', () => {
    const d = only(errors(GEMMA2, 'gemma2.model', { dims: { sequ: 3 } }));
    expect(d.message).toBe("unknown dim 'sequ' (did you mean 'seq'?); the model declares 'batch', 'seq'");
  });

  test('a name used before it is assigned', () => {
    const d = only(errors(model('  a = b + x\n  b = x\n  return y = a')));
    expect(d.message).toBe("'b' is used before it is assigned");
  });

  test('suggest() prefers the closest candidate and gives up on distant names', () => {
    expect(levenshtein('gelgu', 'geglu')).toBe(1);
    expect(suggest('head_dimm', ['head_dim', 'n_heads'])).toBe('head_dim');
    expect(suggest('zzz', ['head_dim', 'n_heads'])).toBeUndefined();
  });
});

describe('call errors', () => {
  test('too many arguments', () => {
    const d = only(errors(model('  return y = rmsnorm(x, 1e-6, 3)')));
    expect(d).toMatchObject({ code: 'arity', message: "block 'rmsnorm' takes 2 arguments (x, eps), got 3" });
  });

  test('unknown named argument', () => {
    const d = only(errors(model('  return y = softmax(x, axes = -1)')));
    expect(d).toMatchObject({ code: 'unknown-argument', message: "primitive 'softmax' has no parameter 'axes' (did you mean 'axis'?); its parameters are (x, axis)" });
  });

  test('missing and repeated arguments', () => {
    const ds = errors(model('  a = rmsnorm(x)\n  return y = rmsnorm(x, 1e-6, x = x)'));
    expect(ds.map((d) => d.message)).toEqual([
      "block 'rmsnorm' is missing argument 'eps'; its parameters are (x, eps)",
      "argument 'x' of block 'rmsnorm' is given twice",
    ]);
  });
});

describe('semantic errors', () => {
  test('shape mismatch carries the location of the expression', () => {
    const d = only(errors(model('  w = param w[3]\n  return y = x + w')));
    expect(d).toMatchObject({ code: 'shape', line: 7, col: 14, length: 5 });
    expect(d.message).toBe('add: shapes [batch, seq, 8] and [3] do not broadcast (dim 8 vs 3)');
  });

  test('variant setting an unknown hyperparameter', () => {
    const d = only(errors(GEMMA2.replace('variant "9b"  { d_model = 3584', 'variant "9b"  { dmodel = 3584'), 'gemma2.model', { variant: '2b' }));
    expect(d.message).toBe("unknown hyperparameter 'dmodel' in variant 9b (did you mean 'd_model'?)");
  });

  test('cyclic hyperparameters, in the defaults and in one variant only', () => {
    const ds = errors(`hparams { a = b + 1; b = a * 2; c = 1; e = 2 }\nvariant "v" { c = e; e = c }\nforward(x: f32[2]) { return x }`);
    expect(ds.map((d) => d.message)).toEqual(['cyclic hyperparameter definition: a -> b -> a', 'cyclic hyperparameter definition in variant v: c -> e -> c']);
  });

  test('recursion between blocks, direct and mutual', () => {
    const ds = errors(model('  return y = f(x)', 'block f(v) { return g(v) }\nblock g(v) { return f(v) }\nblock h(v) { return h(v) }'));
    expect(ds.map((d) => d.code)).toEqual(['recursion', 'recursion']);
    expect(ds[0].message).toBe('recursion between blocks: f -> g -> f (recursion is not allowed)');
    expect(ds[1].message).toBe("block 'h' calls itself (recursion is not allowed)");
  });

  test('a tensor condition must be a compile-time bool', () => {
    const d = only(errors(model('  if x > 0.0 { x = x * 2.0 }\n  return y = x')));
    expect(d.message).toMatch(/the condition must be known at compile time.*use select/);
  });

  test('config values of the wrong kind', () => {
    const d = only(errors(GEMMA2, 'gemma2.model', { config: { hidden_size: 'big', vocab_size: [1] } }).filter((x) => /hidden_size/.test(x.message)));
    expect(d.message).toBe("config key 'hidden_size' gives the string \"big\" for 'd_model', which is the number 2304 by default");
  });

  test('runaway loops are stopped with a diagnostic', () => {
    const d = only(errors(GEMMA2.replace('n_layers     = 26', 'n_layers     = 26000000'), 'gemma2.model'));
    expect(d.code).toBe('limit');
  });

  test('a model without forward', () => {
    expect(only(errors('hparams { a = 1 }')).message).toMatch(/no forward/);
  });

  test('many independent errors are all reported in one run', () => {
    const src = GEMMA2.replace('head_dim = 128;', 'head_dimm = 128;')
      .replace('-> d_ff', '-> dff')
      .replace('rmsnorm(x, eps)\n  h = mlp', 'rmsnorm(x, epss)\n  h = mlp')
      .replace('mlp: geglu(', 'mlp: gelgu(')
      .replace('x = model.norm: rmsnorm(x, eps)', 'x = model.norm: rmsnorm(x, eps, 3)');
    const ds = errors(src, 'gemma2.model');
    expect(ds.map((d) => d.code)).toEqual(['unknown-hparam', 'unknown-hparam', 'unknown-name', 'unknown-block', 'arity']);
    expect(ds.map((d) => d.line)).toEqual([...ds.map((d) => d.line)].sort((a, b) => (a ?? 0) - (b ?? 0)));
  });

  test('compileModel never throws on odd input', () => {
    for (const s of ['', '}', 'forward(', 'block', '"unterminated', 'forward(x: f32[2]) { return x[0] }', 'hparams { a = 1 / 0 }\nforward(x: f32[a]) { return x }'])
      expect(() => compileModel(s, 'odd.model')).not.toThrow();
  });
});

describe('found as a new user (QA)', () => {
  test('errors of the static checks do not hide independent shape and type errors of the same run', () => {
    const src = `hparams { d = 8; vocab = 10 }
dim batch, seq
block proj(x, n) {
  return linear(x, param w[n, d + 1])
}
forward(ids: i32[batch, seq]) {
  e = param embed.weight[vocab, d]
  x = gather(e, ids)
  a = p1: proj(x, 4)
  b = x + param bias[d + 2]
  z = foo + 1
  return out = x
}`;
    const ds = errors(src);
    expect(ds.map((d) => [d.line, d.code])).toEqual([
      [4, 'shape'],
      [10, 'shape'],
      [11, 'unknown-name'],
    ]);
    // the unknown name is found by the static check and again while elaborating: reported once
    expect(ds.filter((d) => /foo/.test(d.message))).toHaveLength(1);
  });

  test('junk after the declarations names what was expected, not EOF', () => {
    const d = only(errors('hparams { d = 4 }\nfoo bar\nforward(x: f32[d]) { return y = x }\n'));
    expect(d).toMatchObject({ code: 'syntax', line: 2, col: 1 });
    expect(d.message).toBe("expected a declaration ('model', 'hparams', 'variant', 'config', 'dim', 'block' or 'forward') but found 'foo'");
  });

  test('a binary file gives at most MAX_ERRORS errors plus one summary, and short printable source lines', () => {
    let seed = 7;
    const bytes = Buffer.alloc(200_000);
    for (let i = 0; i < bytes.length; i++) bytes[i] = (seed = (seed * 1103515245 + 12345) & 0x7fffffff) >> 16;
    const ds = errors(bytes.toString('utf8'), 'random.model');
    expect(ds.length).toBe(MAX_ERRORS + 1);
    const last = ds.filter((d) => d.code === 'limit');
    expect(last).toHaveLength(1);
    expect(last[0].message).toMatch(/^too many errors: \d+ more not shown/);
    const text = formatDiagnostics(ds);
    for (const line of text.split('\n')) expect(line.length).toBeLessThanOrEqual(SNIPPET_WIDTH + 200);
    // eslint-disable-next-line no-control-regex
    expect(text.replace(/\n/g, '')).not.toMatch(/[\u0000-\u001f\u007f]/);
  });

  test('a long source line is cut around the caret, which still points at the error', () => {
    const pad = Array.from({ length: 60 }, (_, i) => `a${i}`).join(' + ');
    const d = only(errors(`hparams { ${Array.from({ length: 60 }, (_, i) => `a${i} = ${i}`).join('; ')} }\ndim n\nforward(x: f32[n]) {\n  return y = x * (${pad} + nope)\n}\n`));
    const [, shown, caret] = formatDiagnostic(d).split('\n');
    expect(shown.length).toBeLessThanOrEqual(SNIPPET_WIDTH + 8);
    expect(shown.startsWith('    …')).toBe(true);
    expect(shown.slice(caret.indexOf('^'), caret.indexOf('^') + 4)).toBe('nope');
  });

  test('an error caused by a config.json value carries a note naming the config key that set it', () => {
    const ds = errors(GEMMA2, 'gemma2.model', { config: { hidden_size: -64, num_hidden_layers: 2 } });
    const d = only(ds);
    expect(d.message).toMatch(/a dimension of param 'model.embed_tokens.weight' must be a non-negative integer, got the number -64/);
    expect(d.notes).toEqual([expect.objectContaining({ message: "'d_model' is -64, from config key 'hidden_size'", lineText: expect.stringMatching(/hidden_size\s+-> d_model/) })]);
    // through a derived hyperparameter: head_dim = d_model / n_heads in Llama 2
    const llama = read('examples/llama2.model');
    const d2 = only(errors(llama, 'llama2.model', { config: { hidden_size: 100, num_attention_heads: 3, num_key_value_heads: 3, num_hidden_layers: 1 } }));
    expect(d2.notes.map((n) => n.message)).toEqual(
      expect.arrayContaining(["'d_model' is 100, from config key 'hidden_size'", "'n_heads' is 3, from config key 'num_attention_heads'"]),
    );
    // without a config, no such notes
    expect(only(errors(GEMMA2.replace('d_model      = 2304', 'd_model      = -64'), 'gemma2.model')).notes).toEqual([]);
  });

  test('a second unlabelled call of a block with weights warns that the calls share one tensor (a loop reusing a label does not)', () => {
    const src = `hparams { d = 8; n = 3 }
dim batch, seq
block mlp(x) { return linear(x, param w[d, d]) }
forward(x: f32[batch, seq, d]) {
  h = rmsnorm(x, 1e-6)
  h = rmsnorm(h, 1e-6)
  for i in 0 .. n { h = shared: mlp(h) }
  return y = h
}`;
    const r = compileModel(src, 'share.model');
    expect(r.graph).toBeDefined();
    expect(r.diagnostics.map((d) => [d.severity, d.line, d.col])).toEqual([['warning', 6, 7]]);
    expect(r.diagnostics[0].message).toMatch(/param 'weight' is declared again by this call of 'rmsnorm' in the same scope, so both calls share one tensor/);
    expect(r.diagnostics[0].notes[0]).toMatchObject({ line: 5, message: 'the first call, which declared it' });
    // with another width the second call is an error, and it says why
    const d = only(errors(src.replace('h = rmsnorm(h, 1e-6)', 'h = rmsnorm(concat([h, h], axis = -1), 1e-6)'), 'share.model'));
    expect(d.message).toMatch(/was declared as f32\[8\], now as f32\[16\] \(a second call of 'rmsnorm' in the same scope declares the same name; give each call its own label\)/);
    // the shipped models label every call: no warnings
    for (const f of ['gemma2.model', 'examples/gemma1.model', 'examples/llama2.model']) expect(compileModel(read(f), f).diagnostics).toEqual([]);
  });

  test('a UTF-8 byte-order mark and Windows line endings are read like any other file', () => {
    const crlf = GEMMA2.replace(/\n/g, '\r\n');
    expect(compileModel('\uFEFF' + crlf, 'gemma2.model').diagnostics).toEqual([]);
    const d = only(errors('\uFEFF' + crlf.replace('head_dim = 128;', 'head_dimm = 128;'), 'gemma2.model', { variant: '27b' }));
    expect(d).toMatchObject({ line: 29, col: 17, lineText: '                head_dimm = 128; query_scalar = d_model / n_heads }' });
  });

  test('absurd nesting and 20,000-term sums are limit errors at their place, not stack overflows', () => {
    const head = 'hparams { d = 4 }\ndim n\nforward(x: f32[n, d]) {\n  return y = ';
    let d = only(errors(head + '('.repeat(5000) + 'x' + ')'.repeat(5000) + '\n}\n'));
    expect(d).toMatchObject({ code: 'limit', line: 4, col: 13 + MAX_NESTING }); // forward's { is the first level
    d = only(errors(head + '-'.repeat(3000) + 'x\n}\n'));
    expect(d).toMatchObject({ code: 'limit', line: 4 });
    d = only(errors(head + 'x' + ' + x'.repeat(20000) + '\n}\n'));
    expect(d).toMatchObject({ code: 'limit', line: 4, col: 12 + 4 * MAX_CHAIN }); // the MAX_CHAIN-th '+'
    expect(d.message).toBe(`an expression with more than ${MAX_CHAIN} operators in a row; split it into several statements`);
    // what is allowed still compiles, and modelInfo (used by \`check\`) never throws either
    expect(compileModel(head + '('.repeat(MAX_NESTING - 1) + 'x' + ')'.repeat(MAX_NESTING - 1) + ' + x' + ' + x'.repeat(MAX_CHAIN - 2) + '\n}\n', 'ok.model').graph).toBeDefined();
    expect(() => modelInfo(head + 'x' + ' + x'.repeat(20000) + '\n}\n', 'long.model')).not.toThrow();
  });
});
