#!/usr/bin/env python3
"""Compile a real-size Lapidary program (StableHLO text, one device) with XLA on the GPU, report XLA's own cost
analysis of the unoptimized module (HloCostAnalysis on the CPU backend: the GPU's PJRT C API does not offer it) next
to Lapidary's cost.json, the compiled executable's memory, and time it on random inputs made on the device.

  python3 real_size.py PROGRAM.mlir COST.json [--repeat K]

Inputs: floats |N(0,1)|·0.02 (non-negative, so Adam's second moments stay valid), float scalars 1e-3, integers 1.
Timing only — there is nothing to compare numerics with at this size (bench/xla-verify/device-check.sh does that on
the tiny model). Last line: one JSON object. Needs jax (the device machine)."""
import json, re, sys, time

prog, cost_path = sys.argv[1], sys.argv[2]
repeat = int(sys.argv[sys.argv.index("--repeat") + 1]) if "--repeat" in sys.argv else 10
import numpy as np, jax, jax.numpy as jnp
from jax._src.lib import xla_client as xc
from jax._src import xla_bridge

ours = json.load(open(cost_path))
res = {"program": prog.split("/")[-1], "lapidary": {k: ours.get(k) for k in ("hardware_flops_per_chip", "model_flops_per_step",
       "step_time_s", "mfu", "memory_per_chip_bytes", "chip")}}
text = open(prog).read()
t0 = time.perf_counter()
comp = xc._xla.mlir.mlir_module_to_xla_computation(text, use_tuple_args=False, return_tuple=False)
be = xla_bridge.get_backend("gpu"); dev = be.devices()[0]
res["device"] = dev.device_kind
try:
    cpu = xla_bridge.get_backend("cpu")
    res["xla_cost_unoptimized"] = {k: v for k, v in xc._xla.hlo_module_cost_analysis(cpu, comp.get_hlo_module()).items()
                                   if k in ("flops", "transcendentals", "bytes accessed")}
except Exception as e:
    res["cost_error"] = str(e)[:500]
opts = xc.CompileOptions(); opts.num_replicas = 1; opts.num_partitions = 1
t1 = time.perf_counter()
exe = be.compile_and_load(text, xc.DeviceList((dev,)), opts)
res["compile_s"] = round(time.perf_counter() - t1, 2)
try:
    m = exe.get_compiled_memory_stats()
    res["memory"] = {k: getattr(m, k) for k in ("argument_size_in_bytes", "output_size_in_bytes", "temp_size_in_bytes") if hasattr(m, k)}
except Exception as e:
    res["memory_error"] = str(e)[:300]
# Remat survives XLA when the recomputation's transcendentals are still there after optimization (XLA's CSE would
# otherwise merge a recomputed layer with its forward): count them in the optimized module.
h = exe.hlo_modules()[0].to_string()
res["optimized_exp_tanh"] = [len(re.findall(r" exponential\(", h)), len(re.findall(r" tanh\(", h))]

sig = re.search(r"func\.func (?:public )?@main\((.*?)\)\s*->", text, re.S)
types = re.findall(r"%arg\d+: tensor<([^>]*)>", sig.group(1))
DT = {"f32": jnp.float32, "bf16": jnp.bfloat16, "f16": jnp.float16, "i32": jnp.int32, "si32": jnp.int32, "i64": jnp.int64}
key = jax.random.PRNGKey(0); args = []
for i, t in enumerate(types):
    parts = t.split("x"); dt = DT[parts[-1]]; shape = tuple(int(p) for p in parts[:-1])
    if jnp.issubdtype(dt, jnp.floating):
        x = jnp.full(shape, 1e-3, dt) if not shape else (jnp.abs(jax.random.normal(jax.random.fold_in(key, i), shape, jnp.float32)) * 0.02).astype(dt)
    else:
        x = jnp.ones(shape, dt)
    args.append(jax.device_put(x, dev))
res["arguments"] = len(args)
res["argument_bytes"] = int(sum(a.size * a.dtype.itemsize for a in args))

def run():
    out = exe.execute_sharded(args)
    arrs = [s[0] for s in out.disassemble_into_single_device_arrays()]
    for a in arrs: a.block_until_ready()
    return arrs
outs = run(); run()  # warm-up
res["outputs"] = len(outs)
res["finite"] = bool(all(bool(jnp.isfinite(o.astype(jnp.float32)).all()) for o in outs if jnp.issubdtype(o.dtype, jnp.floating)))
ts = []
for _ in range(repeat):
    t = time.perf_counter(); run(); ts.append((time.perf_counter() - t) * 1e3)
ts.sort()
res["median_ms"] = round(ts[len(ts) // 2], 3); res["min_ms"] = round(ts[0], 3)
x = res.get("xla_cost_unoptimized", {}).get("flops")
# cost.json's per-op-class flops cover every instruction (hardware_flops_per_chip counts the matmuls only, as MFU does)
allf = sum(c["flops"] for c in ours.get("per_op_class", {}).values())
if x and allf: res["flops_ours_over_xla"] = allf / x
res["achieved_tflops"] = round(ours["hardware_flops_per_chip"] / (res["median_ms"] / 1e3) / 1e12, 1)
res["total_s"] = round(time.perf_counter() - t0, 1)
print(json.dumps(res))
