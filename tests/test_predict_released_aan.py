"""The flagship path (issue 20): convert the backbones, import the authors' released
AttendAffectNet, `main.py --mode=predict --video=<the fixture film>` writes its curve.

Backbone weights are generated here in the published layouts (`common.published_layout`: every
published layer name and output size; small random values) and converted through the documented
commands; the extractors run at small resolutions and few frames (`--extractor_params`). The CSV is
checked against the released model's forward written in NumPy (itself checked against the
authors' PyTorch outputs) on the five features extracted separately with `extract_film`.
"""

import csv
import json

import numpy as np
import pytest

import refusals
from conftest import FIXTURES, MEDIA_FIXTURE
from emojax.backbones import common, convert
from emojax.features import convert_vggish, extract
from emojax.importers import attendaffectnet as aan_import

AAN = FIXTURES / "attendaffectnet"
STREAMS = ("resnet50", "flownet", "i3d", "vggish", "emobase")
# Small inputs for a CPU test; the networks keep their layers and output sizes.
SMALL = {"resnet50_pool": {"frames_per_second": 1, "resize": 32, "crop": 32, "batch_size": 5},
         "flownets": {"num_frames": 3, "short_side": 64, "crop": 64},
         "i3d_rgb": {"num_frames": 8, "short_side": 32, "crop": 32}}


def _generated(layout, seed):
  """Random weights of a published layout: He-scaled kernels, plausible BatchNorm statistics."""
  rng = np.random.default_rng(seed)
  out = {}
  for name, shape in layout.items():
    if name.endswith("running_var") or (len(shape) == 1 and name.endswith("weight")):
      out[name] = rng.uniform(0.5, 1.5, shape).astype(np.float32)
    elif len(shape) == 1:
      out[name] = rng.normal(0, 0.1, shape).astype(np.float32)
    else:
      a = rng.standard_normal(shape, dtype=np.float32)
      out[name] = a * np.float32(np.sqrt(2.0 / np.prod(shape[1:])))
  return out


def _vggish_state(rng):
  """torchvggish's names, narrow hidden widths, the published 128-d output."""
  sd, cin = {}, 1
  for i, cout in zip((0, 3, 6, 8, 11, 13), (4, 4, 6, 6, 8, 8)):
    sd[f"features.{i}.weight"] = rng.normal(0, (2 / (9 * cin)) ** 0.5,
                                            (cout, cin, 3, 3)).astype(np.float32)
    sd[f"features.{i}.bias"] = rng.normal(0, 0.1, cout).astype(np.float32)
    cin = cout
  fin = 6 * 4 * cin
  for i, fout in zip((0, 2, 4), (16, 16, 128)):
    sd[f"embeddings.{i}.weight"] = rng.normal(0, (2 / fin) ** 0.5, (fout, fin)).astype(np.float32)
    sd[f"embeddings.{i}.bias"] = rng.normal(0, 0.1, fout).astype(np.float32)
    fin = fout
  return sd


@pytest.fixture(scope="module")
def backbones(tmp_path_factory):
  """backbones/ as the documented commands write it, from generated published files."""
  tmp = tmp_path_factory.mktemp("published")
  out = tmp / "backbones"
  for seed, (network, name) in enumerate((("resnet50", "resnet50.npz"),
                                          ("flownets", "flownets.npz"), ("i3d", "i3d_rgb.npz"))):
    src = tmp / f"{network}_published.npz"
    np.savez(src, **_generated(common.published_layout(convert.network(network)), seed))
    assert convert.main([f"--network={network}", f"--source={src}", f"--out={out / name}"]) == 0
    src.unlink()
  np.savez(tmp / "vggish_published.npz", **_vggish_state(np.random.default_rng(7)))
  assert convert_vggish.main([str(tmp / "vggish_published.npz"), str(out / "vggish.npz")]) == 0
  return out


def _layer_norm(x, a, b):
  xc = x - x.mean(-1, keepdims=True)
  std = np.sqrt((xc ** 2).sum(-1, keepdims=True) / (x.shape[-1] - 1))
  return a * xc / (std + 1e-6) + b


def numpy_feature_aan(sd, feats):
  """The released five-stream Feature AAN (the authors' code: pre-norm blocks, their LayerNorm,
  2 heads, FF ReLU(w(x)), head on the mean token) in float64 NumPy; feats in STREAMS order."""
  sd = {k: np.asarray(v, np.float64) for k, v in sd.items()}
  lin = lambda x, p: x @ sd[p + ".weight"].T + sd[p + ".bias"]  # noqa: E731
  x = np.stack([lin(np.asarray(f, np.float64), f"linear{i + 1}") for i, f in enumerate(feats)], 1)
  n, t, d = x.shape
  layers = len({k.split(".")[2] for k in sd if k.startswith("encoder.layers.")})
  for l in range(layers):
    p = f"encoder.layers.{l}."
    y = _layer_norm(x, sd[p + "sublayer.0.norm.a_2"], sd[p + "sublayer.0.norm.b_2"])
    q, k, v = (lin(y, p + f"self_attn.linears.{j}").reshape(n, t, 2, d // 2).transpose(0, 2, 1, 3)
               for j in range(3))
    s = q @ k.transpose(0, 1, 3, 2) / np.sqrt(d // 2)
    w = np.exp(s - s.max(-1, keepdims=True))
    o = (w / w.sum(-1, keepdims=True)) @ v
    x = x + lin(o.transpose(0, 2, 1, 3).reshape(n, t, d), p + "self_attn.linears.3")
    y = _layer_norm(x, sd[p + "sublayer.1.norm.a_2"], sd[p + "sublayer.1.norm.b_2"])
    x = x + np.maximum(lin(y, p + "feed_forward.w"), 0)
  x = _layer_norm(x, sd["encoder.norm.a_2"], sd["encoder.norm.b_2"])
  return lin(x.mean(1), "linear")[:, 0]


def test_numpy_forward_reproduces_the_authors_outputs():
  sd = dict(np.load(AAN / "mdb_arousal_feature_aan_video_audio.npz"))
  with np.load(AAN / "sample_inputs.npz") as z:
    feats = [z[s] for s in STREAMS]
  want = np.load(AAN / "mdb_arousal_feature_aan_video_audio_outputs.npy")
  np.testing.assert_allclose(numpy_feature_aan(sd, feats), want, atol=1e-4)


def test_released_aan_predicts_the_fixture_film_from_its_video_and_sound(backbones, tmp_path,
                                                                         capsys):
  run = tmp_path / "runs" / "aan_released"
  assert aan_import.main([f"--state_dict={AAN / 'mdb_arousal_feature_aan_video_audio.npz'}",
                          "--target=arousal", f"--workdir={run}", f"--backbones={backbones}",
                          f"--extractor_params={json.dumps(SMALL)}"]) == 0
  assert "--mode=predict" in capsys.readouterr().out
  code, err = refusals.run_main("--mode=predict", f"--workdir={run}", f"--video={MEDIA_FIXTURE}")
  assert code == 0, err[-3000:]
  assert "windows of 5 s, hop 5 s" in capsys.readouterr().out
  rows = list(csv.DictReader((run / "predict" / "bigbuckbunny.csv").open()))
  assert [(r["window"], r["start"], r["end"]) for r in rows] == [("0", "0", "5")]
  assert (run / "predict" / "bigbuckbunny.png").stat().st_size > 1000

  # The five features of the film's one 5 s window, extracted separately (the paper's rules:
  # per clip, VGGish averaged over the clip's seconds), and the released model in NumPy.
  w = lambda f: str(backbones / f)  # noqa: E731
  ff = extract.extract_film(MEDIA_FIXTURE, {
      "resnet50_pool": {"weights_path": w("resnet50.npz"), "per": "clip", "clip_seconds": 5,
                        **SMALL["resnet50_pool"]},
      "flownets": {"weights_path": w("flownets.npz"), "level": "clip", "clip_seconds": 5,
                   **SMALL["flownets"]},
      "i3d_rgb": {"weights_path": w("i3d_rgb.npz"), "level": "clip", "clip_seconds": 5,
                  **SMALL["i3d_rgb"]},
      "vggish_embedding": {"weights_path": w("vggish.npz")},
      "opensmile_functionals": {"feature_set": "emobase2010", "level": "clip",
                                "clip_seconds": 5}})
  feats = [ff.streams["resnet50_pool"], ff.streams["flownets"], ff.streams["i3d_rgb"],
           ff.streams["vggish_embedding"].mean(0, keepdims=True),
           ff.streams["opensmile_functionals"]]
  assert [f.shape for f in feats] == [(1, 2048), (1, 1024), (1, 1024), (1, 128), (1, 1582)]
  sd = dict(np.load(AAN / "mdb_arousal_feature_aan_video_audio.npz"))
  want = numpy_feature_aan(sd, feats)
  assert float(rows[0]["arousal"]) == pytest.approx(float(want[0]), abs=1e-4)


def test_films_config_builds_the_papers_five_streams_per_second(backbones):
  """attendaffectnet:films reads the films dataset built with the paper's extractors, in the
  released models' input order and sizes (the backbones folder given as the docs say)."""
  # pylint: disable=import-outside-toplevel
  from configs import attendaffectnet, common as config_common
  from emojax.features import manifest  # pylint: disable=import-outside-toplevel
  c = attendaffectnet.get_config("films")
  assert (c.dataset.name, c.inputs.unit, c.data.clip_seconds) == ("films", "second", 5)
  assert c.inputs.streams == ("resnet50_pool", "flownets", "i3d_rgb", "vggish_embedding",
                              "opensmile_functionals")
  sources = config_common.sources(c)
  assert all(k in sources for k in ("dataset.name", "dataset.builder_kwargs", "inputs.streams"))
  spec = c.dataset.builder_kwargs.extractors.to_dict()
  assert sorted(spec) == sorted(c.inputs.streams)
  for e in spec.values():
    if "weights_path" in e:
      e["weights_path"] = str(backbones / e["weights_path"].split("/")[-1])
  made = manifest.for_spec(spec)["extractors"]
  assert {n: (e["per"], e["shape"]) for n, e in made.items()} == {
      "resnet50_pool": ("second", [2048]), "flownets": ("second", [1024]),
      "i3d_rgb": ("second", [1024]), "vggish_embedding": ("second", [128]),
      "opensmile_functionals": ("second", [1582])}
  assert attendaffectnet.get_config("films,audio").inputs.streams == (
      "vggish_embedding", "opensmile_functionals")


@pytest.mark.parametrize("args,fragments", [
    (["--backbones={tmp}/none"], ["resnet50_pool", "none/resnet50.npz does not exist",
                                  "python -m emojax.backbones.convert --network=resnet50"]),
    (["--extractor_params={{}}"], ["--extractor_params needs --backbones"]),
    (["--backbones={tmp}", "--extractor_params=[1"], ["--extractor_params is not JSON"]),
    (["--backbones={tmp}", '--extractor_params={{"vgg16_fc7": {{}}}}'],
     ["'vgg16_fc7' is not one of this model's extractors"]),
], ids=["weights_missing", "params_without_backbones", "params_not_json", "params_other_extractor"])
def test_import_with_backbones_refuses_in_one_line(tmp_path, args, fragments):
  before = refusals.snapshot(tmp_path)
  code, err = refusals.run_entry(aan_import.main,
                                 f"--state_dict={AAN / 'mdb_arousal_feature_aan_video_audio.npz'}",
                                 "--target=arousal", f"--workdir={tmp_path / 'run'}",
                                 *(a.format(tmp=tmp_path) for a in args))
  refusals.check_refusal(code, err, fragments)
  refusals.unchanged(before)
