r"""Where a train step's time goes: convolutions vs the rest, JAX (the harness's step) vs PyTorch.

JAX    the harness's own jitted step (`video_conv_throughput.harness_step` for c3d / r2plus1d,
       `fusion_lstm_throughput.harness_step` for seed 002's fusion CNN + LSTM), one step traced
       with `jax.profiler` (XLA:CPU records every thunk: fusion, convolution, dot, while loop);
       each thunk's exclusive time (its own span less the thunks nested in it, e.g. a scan's
       body inside its while loop) is assigned to a class from the compiled HLO's metadata (the
       Python call stack of the op the thunk came from, read from an HLO dump of the same
       process): conv (emojax/nn/video_conv.py, nnx.Conv, lax.conv), bn, relu, pool, lrn, fc,
       lstm, optimizer, input (crop / flip / scaling), loss; "unattributed" = thunks without
       metadata (layout copies and transposes XLA inserted).
PyTorch  the same network's eager step (benchmarks' torch_step), torch.profiler's self CPU time
       per aten op, classed by the op's name.
The thunks run on XLA's two worker threads concurrently, so the JAX sums can exceed the step's
wall time; under load every thunk is stretched. Read the shares, not the absolute times.

  PYTHONPATH=. python -m benchmarks.step_split --model c3d
  PYTHONPATH=. python -m benchmarks.step_split --model fusion
  PYTHONPATH=. python -m benchmarks.step_split --model gru     # seed 001 at the paper's shapes

`--model gru` (seed 001's GRU + context gating + MoE step, `gru_moe_throughput`: batch 512,
W 60, GRU 256) has its own classes (`GRU_CLASSES`): the input projections forward and their
weight gradients (with their layout copies and bias sums), the recurrent per-step dots and the
gates' elementwise work inside the scans (forward, backward), dW_hh after the backward scan, the
scans' stacked-output buffers and copies, the head (dropout, context gating, MoE, loss) and the
optimizer. JAX: the step's thunks as above, classed by the Python function and the HLO op;
PyTorch (`torch_runner("torch:2:default")`, its fastest setting in the quiet check): aten ops'
self CPU time, the dots classed by their operands' shapes. XLA:CPU's plain Eigen dots
(`dot` thunks, e.g. a weight gradient contracting the rows of both operands) return before their
work ends, so their time is not in the trace: the JAX table adds a row "Eigen dots (untraced)",
the step's wall time x 2 threads less the traced thunk time (idle time of the workers included).

Not a test: prints a markdown table.
"""

from __future__ import annotations

import argparse
import collections
import glob
import gzip
import json
import os
import re
import subprocess
import sys
import tempfile

CLASSES = ("conv", "bn", "relu", "pool", "lrn", "fc", "lstm", "optimizer", "input", "loss",
           "unattributed", "other")

# Python functions (innermost first wins) -> class.
_JAX_RULES = (
    ("conv", ("conv3d", "_conv2d", "frame_scan_dw", "_strided", "Conv.__call__",
              "_frames2d_with_kernel_grad")),
    ("pool", ("max_pool", "tiled_max_pool", "_tiled_max_pool", "_max_pool", "_pool_taps")),
    ("lrn", ("local_response_norm",)),
    ("bn", ("BatchNorm", "BN.__call__", "bn_train", "_bn_train", "_compute_stats", "_normalize")),
    ("lstm", ("lstm_scan", "LSTMLayer", "Branch._scan", "GRULayer")),
    ("fc", ("Linear.__call__",)),
    ("optimizer", ("update_fn", "apply_updates", "scale_by", "_abs_sq", "safe_increment",
                   "chain")),
    ("input", ("frames", "crop", "flip", "standardise")),
    ("loss", ("loss_value", "masked_mse", "_masked_mean", "cross_entropy")),
)
_TORCH_RULES = (
    ("conv", ("convolution", "conv")), ("pool", ("max_pool", "avg_pool", "adaptive")),
    ("bn", ("batch_norm",)), ("relu", ("relu", "threshold", "clamp_min")),
    ("lstm", ("rnn", "lstm")), ("fc", ("addmm", "aten::mm", "linear")),
)


# --model gru's classes; PyTorch's dots and elementwise ops are not split into forward and
# backward: its rows are "recurrent dots" (forward, backward and its per-step dW_hh) and
# "gates elementwise".
GRU_CLASSES = ("input proj fwd", "input proj dW", "recurrent dots fwd", "recurrent dots bwd",
               "recurrent dots", "gates elementwise fwd", "gates elementwise bwd",
               "gates elementwise", "dW_hh", "scan buffers, copies", "head", "optimizer",
               "unattributed", "other")
_GRU_DIMS = (2048, 128)   # gru_moe_throughput.DIMS: the input widths


def _hlo_opcodes(hlo_text: str) -> dict:
  """Instruction name -> HLO opcode (fusion, dot, copy, ...)."""
  out = {}
  for ln in hlo_text.split("\n"):
    m = re.match(r"\s+(?:ROOT )?%?([\w.\-]+) = \S+ ([\w\-]+)\(", ln)
    if m:
      out[m.group(1)] = m.group(2)
  return out


def _gru_jax_class(stack: list, op_name: str) -> str:
  """A thunk of seed 001's step -> one of GRU_CLASSES."""
  s = "<".join(stack)
  dot = op_name.endswith("dot_general")
  loop = "while/body" in op_name
  bwd = "transpose(jvp" in op_name
  if not stack and not op_name:
    return "unattributed"
  if "_projection_bwd" in s or ("time_major_projection" in s and bwd):
    return "input proj dW"
  if "time_major_projection" in s:
    return "input proj fwd"
  if "_gru_scan_fn" in s or "gru_scan_streams" in s:
    if loop:
      kind = "recurrent dots" if dot else "gates elementwise"
      return f"{kind} {'bwd' if bwd else 'fwd'}"
    return "dW_hh" if dot and bwd else "scan buffers, copies"
  if any(k in s for k in ("update_fn", "apply_updates", "scale_by", "safe_increment", "chain",
                          "clip", "global_norm")):
    return "optimizer"
  if any(k in s for k in ("GruMoe", "ContextGating", "MixtureOfExperts", "Dropout", "BatchNorm",
                          "loss", "l2_penalty", "cross_entropy", "_masked_mean")):
    return "head"
  return "other"


def _gru_torch_class(key: str, shapes: list) -> str:
  """An aten op of the PyTorch GRU + MoE step (its input shapes) -> one of GRU_CLASSES."""
  dims = {d for shp in shapes for d in (shp or [])}
  if key in ("aten::mm", "aten::addmm", "aten::bmm", "aten::matmul", "aten::linear"):
    if 30720 in dims or any(d in dims for d in _GRU_DIMS):
      if any(d in dims for d in _GRU_DIMS):
        # forward: (B T, D) x (D, 3H); weight gradient: (3H, B T) x (B T, D)
        first = shapes[0] if shapes and shapes[0] else []
        return "input proj dW" if first and first[0] != 30720 and 30720 in first \
            else "input proj fwd"
      return "dW_hh"
    if 256 in dims:
      return "recurrent dots"
    return "head"
  op = key.split("::")[-1].rstrip("_")
  if op.startswith("_foreach") or op in ("adam", "_fused_adam", "addcdiv", "addcmul", "lerp",
                                         "sqrt"):
    return "optimizer"
  if op in ("copy", "cat", "stack", "contiguous", "clone", "transpose", "t", "unbind", "select",
            "slice", "view", "as_strided", "empty", "empty_like", "zero", "zeros", "zeros_like",
            "fill", "resize", "_unsafe_view", "reshape", "expand", "index_select", "narrow"):
    return "scan buffers, copies"
  if op in ("sigmoid", "tanh", "mul", "add", "sub", "rsub", "sum", "div", "neg",
            "sigmoid_backward", "tanh_backward", "_thnn_fused_gru_cell",
            "_thnn_fused_gru_cell_backward", "gru_cell"):
    return "gates elementwise"
  if op in ("batch_norm", "native_batch_norm", "native_batch_norm_backward", "_batch_norm_impl_index",
            "binary_cross_entropy", "binary_cross_entropy_backward", "softmax", "_softmax",
            "_softmax_backward_data", "clamp", "clamp_backward", "where", "mean"):
    return "head"
  return "other"


def _hlo_stacks(hlo_text: str) -> dict:
  """Instruction name -> (list of Python function names innermost first, op_name)."""
  files, funcs, locs, frames = {}, {}, {}, {}
  section = None
  for ln in hlo_text.split("\n"):
    if ln in ("FileNames", "FunctionNames", "FileLocations", "StackFrames"):
      section = ln
      continue
    if section and ln[:1].isdigit():
      i, rest = ln.split(" ", 1)
      d = dict(re.findall(r"(\w+)=(\d+)", rest))
      if section == "FileNames":
        files[int(i)] = rest.strip('"')
      elif section == "FunctionNames":
        funcs[int(i)] = rest.strip('"')
      elif section == "FileLocations":
        locs[int(i)] = funcs[int(d["function_name_id"])]
      else:
        frames[int(i)] = (int(d["file_location_id"]), int(d["parent_frame_id"]))
    elif section and not ln.strip():
      section = None

  def stack(fid):
    out, seen = [], set()
    while fid in frames and fid not in seen:    # parent ids count from 1 (0: none)
      seen.add(fid)
      loc, parent = frames[fid]
      out.append(locs[loc])
      fid = parent - 1
    return out

  inst = {}
  for ln in hlo_text.split("\n"):
    m = re.match(r"\s+(?:ROOT )?%?([\w.\-]+) = ", ln)
    if m:
      sf = re.search(r"stack_frame_id=(\d+)", ln)
      op = re.search(r'op_name="([^"]*)"', ln)
      inst[m.group(1)] = (stack(int(sf.group(1))) if sf else [], op.group(1) if op else "")
  return inst


def _jax_class(stack: list, op_name: str) -> str:
  if not stack and not op_name:
    return "unattributed"
  for fn in stack:
    for cls, keys in _JAX_RULES:
      if any(k in fn for k in keys):
        return cls
  if "relu" in op_name:
    return "relu"
  return "other"


def _exclusive_thunk_times(trace_dir: str) -> dict:
  path = glob.glob(os.path.join(trace_dir, "**", "*.trace.json.gz"), recursive=True)[0]
  tr = json.load(gzip.open(path))
  events = tr["traceEvents"] if isinstance(tr, dict) else tr
  names = {(e["pid"], e["tid"]): e["args"]["name"] for e in events
           if e.get("ph") == "M" and e.get("name") == "thread_name"}
  by_thread = collections.defaultdict(list)
  for e in events:
    if e.get("ph") == "X" and "XLAEigen" in names.get((e["pid"], e["tid"]), ""):
      by_thread[e["tid"]].append(dict(e))
  excl = collections.defaultdict(float)
  for evs in by_thread.values():
    evs.sort(key=lambda e: (e["ts"], -e.get("dur", 0)))
    stack = []
    for e in evs:
      while stack and stack[-1]["ts"] + stack[-1]["dur"] <= e["ts"]:
        stack.pop()
      if stack:
        stack[-1]["child"] = stack[-1].get("child", 0) + e["dur"]
      stack.append(e)
    for e in evs:
      if not e["name"].startswith(("ThunkExecutor", "end: ", "Slinky", "Threadpool")):
        excl[e["name"]] += (e["dur"] - e.get("child", 0)) / 1e3
  return excl


def jax_worker(model: str, width: float, size: int, batch: int) -> dict:
  dump = tempfile.mkdtemp(prefix="step_split_hlo_")
  os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") + f" --xla_dump_to={dump} "
                             "--xla_dump_hlo_as_text --xla_dump_hlo_pass_re=no_pass_dumps").strip()
  import time  # pylint: disable=import-outside-toplevel
  import jax  # pylint: disable=import-outside-toplevel
  if model == "fusion":
    from benchmarks import fusion_lstm_throughput as m  # pylint: disable=import-outside-toplevel
    s = m.sizes(False)
    h = m.harness_step(None, s, m.make_batch(s, 8, 4))
  elif model == "gru":
    from benchmarks import gru_moe_throughput as m  # pylint: disable=import-outside-toplevel
    h = m.harness_step()
  else:
    from benchmarks import video_conv_throughput as m  # pylint: disable=import-outside-toplevel
    h = m.harness_step(None, model, width, size, batch)
  h.run(1)
  h.run(1)
  trace = tempfile.mkdtemp(prefix="step_split_trace_")
  t0 = time.perf_counter()
  with jax.profiler.trace(trace, create_perfetto_trace=True):
    h.run(1)
  wall_ms = (time.perf_counter() - t0) * 1e3
  # the step's module: the largest optimised HLO (instruction names repeat across modules)
  step_hlo = max(glob.glob(os.path.join(dump, "*cpu_after_optimizations.txt")),
                 key=os.path.getsize)
  text = open(step_hlo).read()
  inst = _hlo_stacks(text)
  opcodes = _hlo_opcodes(text)
  out = collections.defaultdict(float)
  for name, ms in _exclusive_thunk_times(trace).items():
    stack, op = inst.get(name, ([], ""))
    if model == "gru":
      out[_gru_jax_class(stack, op)] += ms
      if opcodes.get(name) == "dot":
        out["(Eigen dot thunks, traced part)"] += ms
    else:
      out[_jax_class(stack, op)] += ms
  if model == "gru":
    traced = sum(v for k, v in out.items() if not k.startswith("("))
    out["Eigen dots (untraced)"] = max(0.0, 2 * wall_ms - traced)
    out["(step wall ms)"] = wall_ms
  return dict(out)


def torch_worker(model: str, width: float, size: int, batch: int, threads: int) -> dict:
  from torch.profiler import profile, ProfilerActivity  # pylint: disable=import-outside-toplevel
  if model == "fusion":
    from benchmarks import fusion_lstm_throughput as m  # pylint: disable=import-outside-toplevel
    s = m.sizes(False)
    run, _ = m.make_torch_step(s, m.make_batch(s, 8, 4), threads)
    step = lambda: run(1)  # noqa: E731
  elif model == "gru":
    from benchmarks import gru_moe_throughput as m  # pylint: disable=import-outside-toplevel
    run, _, _ = m.torch_runner(f"torch:{threads}:default",
                               argparse.Namespace(batch=512, window=60, hidden=256, layers=1))
    step = lambda: run(1)  # noqa: E731
  else:
    from benchmarks import video_conv_throughput as m  # pylint: disable=import-outside-toplevel
    step, _ = m.torch_step(model, width, size, batch, threads)
  step()
  step()
  with profile(activities=[ProfilerActivity.CPU], record_shapes=model == "gru") as p:
    step()
  out = collections.defaultdict(float)
  for ev in p.key_averages(group_by_input_shape=model == "gru"):
    if not ev.key.startswith("aten::"):
      continue
    if model == "gru":
      cls = _gru_torch_class(ev.key, ev.input_shapes)
    else:
      cls = next((c for c, keys in _TORCH_RULES if any(k in ev.key for k in keys)), "other")
    out[cls] += ev.self_cpu_time_total / 1e3
  return dict(out)


def _run(lib: str, args) -> dict:
  env = dict(os.environ, PYTHONPATH=os.getcwd())
  if lib == "torch" and args.model != "gru":   # gru: the default policy, its fastest (quiet check)
    env["OMP_WAIT_POLICY"] = "PASSIVE"
  cmd = [sys.executable, "-m", "benchmarks.step_split", "--worker", lib, "--model", args.model,
         "--width", str(args.width), "--size", str(args.size), "--batch", str(args.batch),
         "--threads", str(args.threads)]
  r = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
  line = [l for l in r.stdout.splitlines() if l.startswith("result ")]
  if r.returncode or not line:
    raise RuntimeError(f"{lib} worker failed:\n{r.stderr[-3000:]}")
  return json.loads(line[-1][len("result "):])


def main():
  ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  ap.add_argument("--worker", default="")
  ap.add_argument("--model", default="c3d", choices=("c3d", "r2plus1d", "fusion", "gru"))
  ap.add_argument("--width", type=float, default=0.25)
  ap.add_argument("--size", type=int, default=112)
  ap.add_argument("--batch", type=int, default=8)
  ap.add_argument("--threads", type=int, default=2, help="torch threads (PASSIVE)")
  args = ap.parse_args()
  if args.worker == "jax":
    print("result " + json.dumps(jax_worker(args.model, args.width, args.size, args.batch)))
    return
  if args.worker == "torch":
    print("result " + json.dumps(torch_worker(args.model, args.width, args.size, args.batch,
                                              args.threads)))
    return
  loads = [os.getloadavg()[0]]
  res = {lib: _run(lib, args) for lib in ("jax", "torch")}
  loads.append(os.getloadavg()[0])
  tot = {lib: sum(v for k, v in r.items() if not k.startswith("(")) for lib, r in res.items()}
  policy = "default OpenMP policy" if args.model == "gru" else "PASSIVE"
  print(f"**{args.model}** (JAX: thunk exclusive ms, both XLA threads summed; torch "
        f"{args.threads} thread(s) {policy}: self CPU ms of aten ops; 1-min load "
        f"{min(loads):.1f}-{max(loads):.1f})\n")
  print("| class | JAX ms | JAX share | torch ms | torch share |\n|---|---|---|---|---|")
  classes = GRU_CLASSES + ("Eigen dots (untraced)",) if args.model == "gru" else CLASSES
  for cls in classes:
    j, t = res["jax"].get(cls, 0.0), res["torch"].get(cls, 0.0)
    if j or t:
      print(f"| {cls} | {j:.0f} | {100 * j / tot['jax']:.0f}% | {t:.0f} | "
            f"{100 * t / tot['torch']:.0f}% |")
  print(f"| **all** | {tot['jax']:.0f} | | {tot['torch']:.0f} | |")
  for k in sorted(k for k in res["jax"] if k.startswith("(")):
    print(f"\nJAX {k[1:-1]}: {res['jax'][k]:.0f}")


if __name__ == "__main__":
  main()
