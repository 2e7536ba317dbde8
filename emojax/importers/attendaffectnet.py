r"""The authors' released Feature AAN models (PyTorch state dicts) -> an emojax workdir.

  python -m emojax.importers.attendaffectnet --state_dict=mdb_arousal.npz --target=arousal \
      --workdir=runs/aan_released [--streams=resnet50,flownet,i3d,vggish,emobase] \
      [--backbones=backbones [--extractor_params='{"i3d_rgb": {"num_frames": 64}}']]
  python main.py --mode=predict --workdir=runs/aan_released --video=film.mp4   (with --backbones)
  python main.py --mode=evaluate --workdir=runs/aan_released
      (after pointing `dataset` in <workdir>/config.json at a dataset holding those streams;
      the written default is cognimuse/intended_5s with empty splits)

`--backbones=DIR`: the folder of the converted backbone weights (`resnet50.npz`, `flownets.npz`,
`i3d_rgb.npz`, `vggish.npz`: `python -m emojax.backbones.convert` / `emojax.features.
convert_vggish`, docs/backbones.md). The import then records the extractors of the paper's five
features for the model's streams (`configs/attendaffectnet.py` `paper_extractors`, one row per
5 s clip: the released models' clip-level inputs) in the model's feature manifest, with each
weights file's sha256, and `--mode=predict` computes them from a raw film: one prediction per
5 s window. `--extractor_params` (JSON {extractor: {param: value}}) changes their params (e.g.
fewer frames than the paper's 125 per clip, for speed).

Input: the state dict as `.npz` (numpy arrays under the PyTorch parameter names, e.g. the fixture
tests/fixtures/attendaffectnet/*.npz; torch not needed) or `.pth` (a saved state dict; needs the
optional `torch`). The authors' `.pth` files pickle the whole model: load it with their code and
save `{k: v.numpy() for k, v in model.state_dict().items()}` with `numpy.savez`.

Output: `<workdir>/config.json` (configs/attendaffectnet.py, Feature AAN, the streams and the
target), `<workdir>/final_model` (the weights, `checkpoint.save_model`; no standardisation: the
released models read raw features) and `<workdir>/imported.json` (source, the expected input
streams in order with their sizes). Evaluate mode then runs it like any trained run on a dataset
holding those streams under those names (ResNet-50 2048, FlowNetS 1024, I3D 1024, VGGish 128,
emobase2010 1582); imported with `--backbones`, predict mode computes them from a raw film
(without it, predict says which extractors are missing and how to import with them).

Names: the five-stream model: `linear{i}.weight/bias` (i = 1..5: stream i's Linear(d_i -> 8)),
`encoder.layers.{l}.self_attn.linears.{0,1,2,3}` (q, k, v, output), `feed_forward.w`,
`sublayer.{0,1}.norm.{a_2,b_2}`, `encoder.norm.{a_2,b_2}`, `linear` (8 -> 1). `src_embed.0.lut`
(8x8) is in that state dict but not applied by its forward (its outputs match only without it): its
shape is checked, then it is dropped. The audio-only and video-only models: `reduced_{i}` input
layers (i = the stream's place among resnet50, flownet, i3d, vggish, emobase: 4, 5 audio; 1, 2, 3
video), no `src_embed`, the same encoder names; their feed-forward is w(Dropout(x + tanh(x))) and
their head Linear(Dropout(tanh(mean))) (`model.feed_forward="x_plus_tanh"`,
`model.head_activation="tanh"`, written to the imported config). A missing name, a wrong shape or a
name of another architecture is an error naming the parameter.
"""

from __future__ import annotations

import argparse
import dataclasses
import pathlib
import re
import sys
from typing import Mapping, Sequence

import numpy as np
from flax import nnx

from emojax import checkpoint, cli, errors, fileio, layout, weights
from emojax.models import attendaffectnet as aan

# Stream names by the number of per-stream linears of the released models: 5 = video + audio,
# 3 = video only, 2 = audio only (the authors' three model files).
DEFAULT_STREAMS = {5: aan.RELEASED_STREAMS, 3: aan.RELEASED_STREAMS[:3],
                   2: aan.RELEASED_STREAMS[3:]}
UNUSED = ("src_embed.0.lut.weight", "src_embed.0.lut.bias")
# The released architectures by the name of their per-stream input layers: (feed_forward,
# head_activation) of config.model (tests/fixtures/attendaffectnet/README.md).
ARCHITECTURES = {"linear": ("relu", "none"), "reduced_": ("x_plus_tanh", "tanh")}


def load_state_dict(path: str | pathlib.Path) -> dict[str, np.ndarray]:
  """{name: float32 array} from an `.npz` (no torch) or a `.pth` state dict (optional torch),
  read by `emojax.weights` (a missing, damaged or foreign file: WeightsError naming it)."""
  return weights.read_state_dict(path, what="--state_dict", dtype=np.float32)


def infer_architecture(sd: Mapping[str, np.ndarray]) -> dict:
  """Number of streams, their input sizes, width and encoder depth, from the names and shapes;
  `prefix` "linear" (the five-stream model, linear1..n) or "reduced_" (the audio-only / video-only
  models, reduced_{i} with i the stream's place in RELEASED_STREAMS)."""
  found = {p: sorted(int(m[1]) for k in sd
                     if (m := re.fullmatch(re.escape(p) + r"(\d+)\.weight", k)))
           for p in ARCHITECTURES}
  prefixes = [p for p, ids in found.items() if ids]
  if len(prefixes) != 1 or "linear.weight" not in sd:
    raise errors.ConfigError(
        "not a Feature AAN state dict: no 'linear1.weight' / 'reduced_1.weight' (per-stream "
        "linears, one naming only) or 'linear.weight' (output layer); names start with "
        f"{sorted(sd)[:5]}")
  prefix = prefixes[0]
  ids = found[prefix]
  if prefix == "linear" and ids != list(range(1, len(ids) + 1)):
    raise errors.ConfigError(f"per-stream linears are numbered {ids}; expected linear1..linear"
                             f"{len(ids)} (missing parameter 'linear{_first_gap(ids)}.weight')")
  if prefix == "reduced_" and not set(ids) <= set(range(1, len(aan.RELEASED_STREAMS) + 1)):
    raise errors.ConfigError(f"input layers reduced_{ids}: the released models number them 1..5 "
                             f"({', '.join(aan.RELEASED_STREAMS)})")
  w = sd["linear.weight"]
  if w.ndim != 2 or w.shape[0] != 1:
    raise errors.ConfigError(f"parameter 'linear.weight' has shape {w.shape}; expected (1, d_model)")
  d_model = int(w.shape[1])
  layers = sorted({int(m[1]) for k in sd if (m := re.match(r"encoder\.layers\.(\d+)\.", k))})
  if not layers:
    raise errors.ConfigError("no 'encoder.layers.N.*' parameters: not a Feature AAN state dict")
  dims = []
  for i in ids:
    wi = sd[f"{prefix}{i}.weight"]
    if wi.ndim != 2 or wi.shape[0] != d_model:
      raise errors.ConfigError(f"parameter '{prefix}{i}.weight' has shape {wi.shape}; expected "
                               f"({d_model}, input size)")
    dims.append(int(wi.shape[1]))
  ff, head = ARCHITECTURES[prefix]
  return {"num_streams": len(ids), "dims": dims, "d_model": d_model, "layers": len(layers),
          "prefix": prefix, "ids": ids, "feed_forward": ff, "head_activation": head}


def _first_gap(ids: Sequence[int]) -> int:
  return next(i for i in range(1, len(ids) + 2) if i not in ids)


def expected_names(num_streams: int, layers: int, d_model: int, dims: Sequence[int],
                   prefix: str = "linear", ids: Sequence[int] | None = None
                   ) -> dict[str, tuple[tuple[int, ...], tuple]]:
  """{torch name: (shape, path in the emojax net)} of a Feature AAN; stream k's input layer is
  `{prefix}{ids[k]}` (default linear1..n)."""
  d = d_model
  ids = list(ids) if ids is not None else list(range(1, num_streams + 1))
  out = {}
  for i in range(num_streams):
    out[f"{prefix}{ids[i]}.weight"] = ((d, dims[i]), ("proj", i, "kernel"))
    out[f"{prefix}{ids[i]}.bias"] = ((d,), ("proj", i, "bias"))
  for l in range(layers):
    pre = f"encoder.layers.{l}."
    for j, name in enumerate(("q", "k", "v", "out")):
      out[f"{pre}self_attn.linears.{j}.weight"] = ((d, d), ("layer", l, "attn", name, "kernel"))
      out[f"{pre}self_attn.linears.{j}.bias"] = ((d,), ("layer", l, "attn", name, "bias"))
    out[f"{pre}feed_forward.w.weight"] = ((d, d), ("layer", l, "ff", "w", "kernel"))
    out[f"{pre}feed_forward.w.bias"] = ((d,), ("layer", l, "ff", "w", "bias"))
    for j, norm in enumerate(("norm1", "norm2")):
      out[f"{pre}sublayer.{j}.norm.a_2"] = ((d,), ("layer", l, norm, "scale"))
      out[f"{pre}sublayer.{j}.norm.b_2"] = ((d,), ("layer", l, norm, "bias"))
  out["encoder.norm.a_2"] = ((d,), ("norm", "scale"))
  out["encoder.norm.b_2"] = ((d,), ("norm", "bias"))
  out["linear.weight"] = ((1, d), ("head", "kernel"))
  out["linear.bias"] = ((1,), ("head", "bias"))
  return out


def check_state_dict(sd: Mapping[str, np.ndarray]) -> dict:
  """Architecture of a released Feature AAN state dict; errors name the offending parameter."""
  arch = infer_architecture(sd)
  names = _names(arch)
  for name, (shape, _) in names.items():
    if name not in sd:
      raise errors.ConfigError(f"missing parameter {name!r} (a Feature AAN with "
                               f"{arch['num_streams']} streams and {arch['layers']} layers has it)")
    if tuple(sd[name].shape) != shape:
      raise errors.ConfigError(f"parameter {name!r} has shape {tuple(sd[name].shape)}; the Feature "
                               f"AAN expects {shape}")
  d = arch["d_model"]
  unused = UNUSED if arch["prefix"] == "linear" else ()   # only the five-stream model has them
  for name, shape in zip(unused, ((d, d), (d,))):
    if name in sd and tuple(sd[name].shape) != shape:
      raise errors.ConfigError(f"parameter {name!r} has shape {tuple(sd[name].shape)}; expected "
                               f"{shape}")
  unknown = sorted(set(sd) - set(names) - set(unused))
  if unknown:
    raise errors.ConfigError(f"parameter(s) {unknown[:5]} are not part of a Feature AAN (another "
                             "architecture's state dict?)")
  if d % 2:
    raise errors.ConfigError(f"width {d} (parameter 'linear.weight') is not divisible by 2 heads")
  return arch


def _names(arch: dict) -> dict[str, tuple[tuple[int, ...], tuple]]:
  return expected_names(arch["num_streams"], arch["layers"], arch["d_model"], arch["dims"],
                        arch.get("prefix", "linear"), arch.get("ids"))


def default_streams(arch: dict) -> tuple[str, ...] | None:
  """The released stream names of a state dict's input layers (None: unknown, name them)."""
  if arch.get("prefix", "linear") == "reduced_":
    return tuple(aan.RELEASED_STREAMS[i - 1] for i in arch["ids"])
  return DEFAULT_STREAMS.get(arch["num_streams"])


def released_config(arch: dict, streams: Sequence[str], target: str):
  """configs/attendaffectnet.py (Feature AAN) fitted to a released model."""
  from configs import attendaffectnet as aan_config  # pylint: disable=g-import-not-at-top
  c = aan_config.get_config(f"feature,{target}")
  c.unlock()
  c.inputs.streams = tuple(streams)
  c.model.d_model = arch["d_model"]
  c.model.encoder_layers = arch["layers"]
  c.model.heads = 2             # the released models: 2 heads (the fixture matches only with 2)
  c.model.layer_norm = "authors"
  c.model.norm = "pre"          # the released code: pre-norm blocks and a final LN
  c.model.feed_forward = arch.get("feed_forward", "relu")
  c.model.head_activation = arch.get("head_activation", "none")
  c.inputs.unit = "clip"        # the released models read one clip-level vector per stream
  c.data.standardize = False    # they read raw features
  c.dataset.name = "cognimuse"
  c.dataset.config = "intended_5s"
  c.dataset.splits = type(c.dataset.splits)(dict(train="", validation="", test=""))
  c.lock()
  return c


def load_into(net: aan.FeatureAAN, sd: Mapping[str, np.ndarray], arch: dict,
              streams: Sequence[str]) -> None:
  """Writes the torch parameters into an emojax Feature AAN (kernels transposed)."""
  enc = net.streams
  for name, (_, path) in _names(arch).items():
    v = np.asarray(sd[name], np.float32)
    if path[0] == "proj":
      mod, leaf = enc.proj[streams[path[1]]], path[2]
    elif path[0] == "layer":
      mod = enc.layers[path[1]]
      for p in path[2:-1]:
        mod = getattr(mod, p)
      leaf = path[-1]
    elif path[0] == "norm":
      mod, leaf = enc.norm, path[1]
    else:
      mod, leaf = net.head, path[1]
    if leaf == "kernel":
      v = v.T
    var = getattr(mod, leaf)
    if tuple(var[...].shape) != v.shape:
      raise errors.ConfigError(f"parameter {name!r}: shape {v.shape} does not fit {var[...].shape}")
    var[...] = v


def stream_extractors(streams: Sequence[str], backbones: str | pathlib.Path,
                      params: Mapping[str, Mapping] | None = None, clip_seconds: int = 5
                      ) -> tuple[dict[str, str], dict]:
  """({stream: extractor}, feature manifest) of the paper's features for released streams; every
  extractor is created, so a missing or foreign weights file is an error naming it."""
  from configs import attendaffectnet as aan_config  # pylint: disable=g-import-not-at-top
  from emojax.features import manifest  # pylint: disable=g-import-not-at-top
  table = {r: e for r, e, _ in aan_config.PAPER_FEATURES}
  unknown = [s for s in streams if s not in table]
  if unknown:
    raise errors.ConfigError(f"--backbones: streams {unknown} are not the paper's five "
                             f"({', '.join(table)}); import without --backbones")
  spec = aan_config.paper_extractors(str(backbones), clip_seconds, streams)
  for name, extra in (params or {}).items():
    if name not in spec:
      raise errors.ConfigError(f"--extractor_params: {name!r} is not one of this model's "
                               f"extractors {sorted(spec)}")
    if not isinstance(extra, Mapping):
      raise errors.ConfigError(f"--extractor_params: {name!r} must map to {{param: value}}")
    spec[name].update(extra)
  try:
    made = manifest.for_spec(spec)
  except ImportError as e:  # opensmile_functionals without the optional package
    raise errors.ConfigError(str(e)) from None
  return {s: table[s] for s in streams}, made


def import_released(state_dict: str | pathlib.Path | Mapping[str, np.ndarray], target: str,
                    workdir: str | pathlib.Path, streams: Sequence[str] | None = None,
                    overwrite: bool = False, backbones: str | pathlib.Path | None = None,
                    extractor_params: Mapping[str, Mapping] | None = None) -> pathlib.Path:
  """Writes an emojax workdir holding the released model; returns its path.

  `backbones`: the folder of converted backbone weights: the model's feature manifest then names
  the paper's extractors (`stream_extractors`), so predict mode reads raw films.
  """
  if target not in ("valence", "arousal"):
    raise errors.ConfigError(f"--target={target!r}; use valence or arousal")
  cli.check_output_dir(workdir, "--workdir")  # an existing file, an unwritable place: refused
  source = "arrays" if isinstance(state_dict, Mapping) else str(state_dict)
  sd = dict(state_dict) if isinstance(state_dict, Mapping) else load_state_dict(state_dict)
  arch = check_state_dict(sd)
  n = arch["num_streams"]
  if streams is None:
    streams = default_streams(arch)
    if streams is None:
      raise errors.ConfigError(f"the state dict has {n} streams; name them with --streams")
  streams = tuple(streams)
  if len(streams) != n:
    raise errors.ConfigError(f"--streams names {len(streams)} streams {streams}; the state dict has "
                             f"{n} ({arch['prefix']}{arch['ids'][0]}..{arch['prefix']}"
                             f"{arch['ids'][-1]})")
  workdir = pathlib.Path(workdir)
  if (workdir / "final_model").exists() and not overwrite:
    raise errors.ConfigError(f"{workdir} already holds a model; choose a new --workdir (or "
                             "--overwrite)")
  config = released_config(arch, streams, target)
  dims = dict(zip(streams, arch["dims"]))
  mapped, feature_manifest = ({}, None)
  if backbones is not None:
    mapped, feature_manifest = stream_extractors(streams, backbones, extractor_params,
                                                 int(config.data.clip_seconds))
    made = {s: feature_manifest["extractors"][e]["shape"] for s, e in mapped.items()}
    wrong = {s: shp for s, shp in made.items() if list(shp) != [dims[s]]}
    if wrong:
      raise errors.ConfigError(f"--backbones: the extractors give {wrong} for streams the model "
                               f"reads as {dims}; give the published networks' weights")
  model = aan.create(config, dims, nnx.Rngs(0))
  load_into(model.nets[target], sd, arch, streams)
  workdir.mkdir(parents=True, exist_ok=True)
  fileio.write_json(workdir / "config.json", config.to_dict())
  meta = {"method": "attendaffectnet", "feature_dims": dims, "modalities": list(streams),
          "targets": [target], "task": dataclasses.asdict(aan.task(config)),
          "feature_manifest": feature_manifest, "phases": [],
          "imported_from": source, **({"stream_extractors": mapped} if mapped else {})}
  if overwrite and (workdir / "final_model").exists():
    import shutil  # pylint: disable=g-import-not-at-top
    shutil.rmtree(workdir / "final_model")
  checkpoint.save_model(workdir / "final_model", model, meta)
  fileio.write_json(workdir / "imported.json", {
      "source": source, "target": target, "streams": [{"name": s, "size": d}
                                                      for s, d in dims.items()],
      "d_model": arch["d_model"], "encoder_layers": arch["layers"], "heads": 2,
      "feed_forward": arch["feed_forward"], "head_activation": arch["head_activation"],
      "dropped_unused": [k for k in UNUSED if k in sd],
      "extractors": mapped or None,
      "note": "inputs are raw clip-level features (no standardisation), in this stream order"})
  return workdir


def load_imported(workdir: str | pathlib.Path):
  """(config, model) of an imported (or trained) AAN workdir."""
  import ml_collections  # pylint: disable=g-import-not-at-top
  workdir = pathlib.Path(workdir)
  cfg = fileio.read_json(workdir / "config.json")
  if cfg is None:
    raise errors.ConfigError(f"{workdir / 'config.json'} not found: import a model first")
  config = ml_collections.ConfigDict(layout.upgrade(cfg))
  meta, _ = checkpoint.read_model_meta(workdir / "final_model")
  model = aan.create(config, meta["feature_dims"], nnx.Rngs(0))
  checkpoint.restore_model(workdir / "final_model", model)
  model.eval()
  return config, model


def main(argv: Sequence[str] | None = None) -> int:
  p = argparse.ArgumentParser(
      prog="python -m emojax.importers.attendaffectnet",
      description="Import a released AttendAffectNet (Feature AAN) state dict into an emojax "
                  "workdir usable by `python main.py --mode=evaluate --workdir=...`.")
  p.add_argument("--state_dict", required=True, help=".npz (numpy) or .pth (torch) state dict")
  p.add_argument("--target", required=True, choices=("valence", "arousal"))
  p.add_argument("--workdir", required=True)
  p.add_argument("--streams", default="", help="comma-separated stream names in input-layer order "
                 "(default by count: resnet50,flownet,i3d,vggish,emobase / video 3 / audio 2)")
  p.add_argument("--overwrite", action="store_true")
  p.add_argument("--backbones", default=None, help="folder of the converted backbone weights "
                 "(resnet50.npz, flownets.npz, i3d_rgb.npz, vggish.npz; docs/backbones.md): the "
                 "model then predicts raw films (`main.py --mode=predict`)")
  p.add_argument("--extractor_params", default="", help="with --backbones: JSON {extractor: "
                 "{param: value}} changing the paper's extractor params, e.g. "
                 "'{\"i3d_rgb\": {\"num_frames\": 64}}'")
  args = p.parse_args(argv)
  streams = [s.strip() for s in args.streams.split(",") if s.strip()] or None

  def work():
    import json  # pylint: disable=g-import-not-at-top
    extra = None
    if args.extractor_params:
      if args.backbones is None:
        raise errors.ConfigError("--extractor_params needs --backbones")
      try:
        extra = json.loads(args.extractor_params)
      except json.JSONDecodeError as e:
        raise errors.ConfigError(f"--extractor_params is not JSON ({e}); give "
                                 "'{\"extractor\": {\"param\": value}}'") from None
      if not isinstance(extra, dict):
        raise errors.ConfigError("--extractor_params must be a JSON object {extractor: {...}}")
    out = import_released(args.state_dict, args.target, args.workdir, streams, args.overwrite,
                          args.backbones, extra)
    info = fileio.read_json(out / "imported.json")
    print(f"imported {args.state_dict} -> {out} (target {args.target}; input streams " +
          ", ".join(f"{s['name']} ({s['size']})" for s in info["streams"]) + ")")
    if info.get("extractors"):
      window = fileio.read_json(out / "config.json")["data"]["clip_seconds"]
      print(f"predict a film: python main.py --mode=predict --workdir={out} --video=FILM "
            f"(extractors {', '.join(info['extractors'].values())}, one prediction per "
            f"{window} s window)")
  return cli.run(work)


if __name__ == "__main__":
  sys.exit(main())
