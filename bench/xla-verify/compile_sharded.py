#!/usr/bin/env python3
"""Compile a real-size Lapidary program over N partitions with XLA on N CPU devices, without running it: the whole
program with mhlo.sharding (XLA's SPMD partitioner splits it) or the per-device program with explicit collectives
({manual}). Reports XLA's HloCostAnalysis of the unoptimized module next to cost.json's per-op-class counts (for a
per-device program they count the same thing), the collectives left after XLA's passes, and XLA's memory per device.

  python3 compile_sharded.py PROGRAM.mlir N [COST.json]

Needs jax (the device machine). Last line: one JSON object; exit 1 when XLA refuses the program."""
import json, os, re, sys, time

prog, n = sys.argv[1], int(sys.argv[2])
os.environ["XLA_FLAGS"] = os.environ.get("XLA_FLAGS", "") + f" --xla_force_host_platform_device_count={max(8, n)}"
os.environ["JAX_PLATFORMS"] = "cpu"
import numpy as np, jax
from jax._src.lib import xla_client as xc
from jax._src import xla_bridge

text = open(prog).read(); res = {"program": prog.split("/")[-1], "partitions": n}
be = xla_bridge.get_backend("cpu"); devs = be.devices()[:n]
try:
    comp = xc._xla.mlir.mlir_module_to_xla_computation(text, use_tuple_args=False, return_tuple=False); res["parsed"] = True
except Exception as e:
    res["parsed"] = False; res["error"] = str(e)[:1500]; print(json.dumps(res)); sys.exit(1)
try:
    res["xla_cost_unoptimized"] = {k: v for k, v in xc._xla.hlo_module_cost_analysis(be, comp.get_hlo_module()).items()
                                   if k in ("flops", "transcendentals", "bytes accessed")}
except Exception as e:
    res["cost_error"] = str(e)[:300]
if len(sys.argv) > 3:
    ours = json.load(open(sys.argv[3])); cls = ours.get("per_op_class", {}).values()
    res["lapidary"] = {"flops": sum(c["flops"] for c in cls), "transcendentals": sum(c["transcendentals"] for c in cls),
                       "memory_per_chip_bytes": ours.get("memory_per_chip_bytes")}
opts = xc.CompileOptions(); opts.num_replicas = 1; opts.num_partitions = n
opts.executable_build_options.use_spmd_partitioning = True
opts.device_assignment = xc.DeviceAssignment.create(np.arange(n).reshape(1, n))
t = time.perf_counter()
try:
    exe = be.compile_and_load(text, xc.DeviceList(tuple(devs)), opts); res["compiled"] = True
except Exception as e:
    res["compiled"] = False; res["error"] = str(e)[:1500]; print(json.dumps(res)); sys.exit(1)
res["compile_s"] = round(time.perf_counter() - t, 1)
h = exe.hlo_modules()[0].to_string()
res["collectives_after"] = {k: len(re.findall(r"\b" + k + r"(?:-start)?\(", h))
                            for k in ("all-gather", "all-reduce", "reduce-scatter", "all-to-all", "collective-permute")}
try:
    m = exe.get_compiled_memory_stats()
    res["memory_per_device"] = {k: getattr(m, k) for k in ("argument_size_in_bytes", "output_size_in_bytes", "temp_size_in_bytes") if hasattr(m, k)}
except Exception as e:
    res["memory_error"] = str(e)[:200]
print(json.dumps(res))
