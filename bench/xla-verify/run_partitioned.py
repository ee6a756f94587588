#!/usr/bin/env python3
"""Run Lapidary's per-device program (explicit collectives) on 8 CPU devices with real XLA, each device fed its own
shards of the real inputs, and compare every device's outputs with its shards of the expected outputs.
  python3 run_partitioned.py DIR           the forward (partitioned.mlir, in.safetensors, logits.safetensors)
  python3 run_partitioned.py DIR train_    the training step (train_partitioned.mlir, train_in, train_expected)
  (DIR from bench/xla-verify/prepare.ts; needs jax + safetensors)"""
import json, os, sys
os.environ["XLA_FLAGS"] = os.environ.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=8"
os.environ.setdefault("JAX_PLATFORMS", "cpu")
import numpy as np, jax
from jax._src.lib import xla_client as xc
from jax._src import xla_bridge
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P
from safetensors.numpy import load_file

d = sys.argv[1]
pre = sys.argv[2] if len(sys.argv) > 2 else ""
meta = json.load(open(os.path.join(d, pre + "partitioned_specs.json")))
sizes = dict(meta["mesh"]); names = [a for a, _ in meta["mesh"]]
n = int(np.prod([s for _, s in meta["mesh"]]))
stride = {}; s = 1
for a in reversed(names): stride[a] = s; s *= sizes[a]
coord = lambda p, a: (p // stride[a]) % sizes[a]

def local(x, spec, p):
    for dim, axes in enumerate(spec):
        if not axes: continue
        idx = 0
        for a in axes: idx = idx * sizes[a] + coord(p, a)
        k = int(np.prod([sizes[a] for a in axes])); m = x.shape[dim] // k
        x = np.take(x, np.arange(idx * m, (idx + 1) * m), axis=dim)
    return x

be = xla_bridge.get_backend("cpu"); devs = be.devices()[:n]
opts = xc.CompileOptions(); opts.num_replicas = 1; opts.num_partitions = n
opts.device_assignment = xc.DeviceAssignment.create(np.arange(n).reshape(1, n))
res = {"program": pre + "partitioned.mlir", "partitions": n}
opts.executable_build_options.use_spmd_partitioning = True  # arguments, results and partition ids are {manual}
try:
    exe = be.compile_and_load(open(os.path.join(d, pre + "partitioned.mlir")).read(), xc.DeviceList(tuple(devs)), opts); res["compiled"] = True
except Exception as e:
    res["compiled"] = False; res["error"] = str(e)[:1500]; print(json.dumps(res)); sys.exit(1)
ins = load_file(os.path.join(d, pre + "in.safetensors")); args = [ins[k] for k in sorted(ins, key=lambda k: int(k[3:]))]
mesh = Mesh(np.array(devs), ("p",))
dev_in = []
for a, spec in zip(args, meta["args"]):
    shards = [jax.device_put(local(a, spec, p), devs[p]) for p in range(n)]
    if a.ndim == 0:  # a scalar ({manual}: each device gets the same value)
        dev_in.append(jax.make_array_from_single_device_arrays((), NamedSharding(mesh, P()), shards)); continue
    shape = (shards[0].shape[0] * n,) + tuple(shards[0].shape[1:])
    dev_in.append(jax.make_array_from_single_device_arrays(shape, NamedSharding(mesh, P("p")), shards))
out = exe.execute_sharded(dev_in).disassemble_into_single_device_arrays()
expf = load_file(os.path.join(d, pre + "expected.safetensors" if pre else "logits.safetensors"))
exps = [expf[k] for k in sorted(expf, key=lambda k: int(k[3:]))]
errs = []
res["outputs"] = len(out)
for j, shards in enumerate(out):
    spec = meta["outputs"][j]; exp = exps[j].reshape(meta.get("output_shapes", [None] * len(out))[j] or exps[j].shape)
    for p in range(n):
        want = local(exp, spec, p); got = np.asarray(shards[p])
        if got.shape != want.shape: got = got.reshape(want.shape) if got.size == want.size else got
        errs.append(float(np.abs(got.astype(np.float64) - want).max()) if got.shape == want.shape else float("inf"))
res["max_abs_err"] = max(errs); res["match"] = bool(max(errs) < 1e-4)
if os.environ.get("DEBUG"): res["bad"] = sorted({i // n for i, e in enumerate(errs) if e >= 1e-4})
res["collectives"] = sorted(set(__import__("re").findall(r"\b(all-gather|all-reduce|reduce-scatter|all-to-all)(?:-start)?\(", exe.hlo_modules()[0].to_string())))
print(json.dumps(res)); sys.exit(0 if res["match"] else 1)
