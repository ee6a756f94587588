#!/usr/bin/env python3
"""Run a bf16 training step (what `compile --target tpu --mode train` emits by default: bf16 weights, activations
and gradients; the optimizer, the Adam moments and fp32 master weights in f32) with real XLA on the CPU, fed the f32
step's inputs (each cast to its argument's dtype).

  python3 run_bf16.py PROGRAM.mlir INPUTS.safetensors EXPECTED.safetensors NAMES.json [--beta1 B1 --beta2 B2 --eps E]

NAMES.json: the output names in order (prepare.ts writes it). A bf16 forward and backward cannot match the f32
step's gradients closely, so the checks are of what must hold exactly:
- dtypes: the next weights bf16; loss, master weights and moments f32;
- the f32 update, from the program's own outputs: with g = (m' − β1·m)/(1 − β1), v' = β2·v + (1 − β2)·g², and
  master' = master − lr/(1 − β1^t) · m' / (sqrt(v'/(1 − β2^t)) + ε) (AdamW without weight decay, as prepare.ts builds it);
- the next weights are the new master weights rounded to bf16;
- the loss within 1% of the f32 step's.
The largest relative error of the gradient-carrying outputs against the f32 step is reported, not checked.
Last line: one JSON object; exit 1 on a failed check."""
import json, re, sys
import numpy as np, jax, jax.numpy as jnp
from jax._src.lib import xla_client as xc
from jax._src import xla_bridge
from safetensors.numpy import load_file

prog, inp, exp_path, names_path = sys.argv[1:5]
flag = lambda k, d: float(sys.argv[sys.argv.index(k) + 1]) if k in sys.argv else d
b1, b2, eps = flag("--beta1", 0.9), flag("--beta2", 0.999), flag("--eps", 1e-8)
text = open(prog).read()
names = json.load(open(names_path))
be = xla_bridge.get_backend("cpu"); dev = be.devices()[0]
opts = xc.CompileOptions(); opts.num_replicas = 1; opts.num_partitions = 1
exe = be.compile_and_load(text, xc.DeviceList((dev,)), opts)
sig = re.search(r"func\.func (?:public )?@main\((.*?)\)\s*->", text, re.S).group(1)
args_meta = re.findall(r"%arg\d+: tensor<([^>]*)> \{jax\.arg_info = \"([^\"]+)\"", sig)
DT = {"f32": jnp.float32, "bf16": jnp.bfloat16, "i32": jnp.int32}
order = lambda d: [d[k] for k in sorted(d, key=lambda k: int(re.sub(r"\D", "", k) or 0))]
ins = order(load_file(inp)); exp = order(load_file(exp_path))
args = [jax.device_put(jnp.asarray(x).astype(DT[t.split("x")[-1]]), dev) for x, (t, _) in zip(ins, args_meta)]
outs = [s[0] for s in exe.execute_sharded(args).disassemble_into_single_device_arrays()]
arg = {name: np.asarray(x, dtype=np.float64) for x, (_, name) in zip(ins, args_meta)}
out = {n: o for n, o in zip(names, outs)}
f64 = lambda o: np.asarray(o.astype(jnp.float32), dtype=np.float64)
res = {"program": prog.split("/")[-1], "arguments": len(args), "outputs": len(outs)}
fails = []
params = [n[len("master."):] for n in names if n.startswith("master.")]
res["params"] = len(params)
t, lr = float(arg["step"]), float(arg["lr"])
bc1, bc2 = 1 - b1 ** t, 1 - b2 ** t
worst = {"v": 0.0, "master": 0.0}
for p in params:
    for n, want in ((p, "bfloat16"), ("master." + p, "float32"), ("adam.m." + p, "float32"), ("adam.v." + p, "float32")):
        if str(out[n].dtype) != want: fails.append(f"{n}: {out[n].dtype}, expected {want}")
    m0, v0, w0 = arg["adam.m." + p], arg["adam.v." + p], arg["master." + p]
    m, v, w = f64(out["adam.m." + p]), f64(out["adam.v." + p]), f64(out["master." + p])
    g = (m - b1 * m0) / (1 - b1)
    worst["v"] = max(worst["v"], float(np.abs(v - (b2 * v0 + (1 - b2) * g * g)).max() / np.abs(v).max()))
    worst["master"] = max(worst["master"], float(np.abs(w - (w0 - lr / bc1 * m / (np.sqrt(v / bc2) + eps))).max() / np.abs(w0).max()))
    if not np.array_equal(np.asarray(out[p]), np.asarray(out["master." + p].astype(jnp.bfloat16))): fails.append(f"{p}: not the new master rounded to bf16")
res["update_rel_err"] = worst
if worst["v"] > 1e-4: fails.append(f"second moments: relative error {worst['v']:.3g} from the f32 update of the program's own gradient")
if worst["master"] > 1e-6: fails.append(f"master weights: relative error {worst['master']:.3g} from the f32 update")
loss, ref = float(out["loss"]), float(exp[names.index("loss")])
res["loss"] = [loss, ref]
if abs(loss - ref) > 0.01 * abs(ref): fails.append(f"loss {loss} vs the f32 step's {ref}")
rel = {}
for n, o, e in zip(names, outs, exp):
    k = "grad_norm" if n == "grad_norm" else "adam.m" if n.startswith("adam.m.") else None
    if k: a, b = f64(o), e.astype(np.float64).reshape(o.shape); rel[k] = max(rel.get(k, 0.0), float(np.abs(a - b).max() / max(np.abs(b).max(), 1e-30)))
    if not np.isfinite(f64(o)).all(): fails.append(f"{n}: not finite")
res["vs_f32_step_rel_err (bf16 gradients; reported)"] = rel
res["match"] = not fails
if fails: res["errors"] = fails[:10]
print(json.dumps(res))
sys.exit(0 if not fails else 1)
