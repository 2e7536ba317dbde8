"""BN-Inception, I3D and FlowNetS: converters from the published PyTorch layouts, and the Flax
networks against PyTorch reference forwards written here in plain torch (independently of
emojax: the widths and names below are typed from the ports, and each generated state dict loads
into its reference with strict=True, proving the converter's expected layout is the port's).

Weights are generated (full published shapes); inputs are small (the networks are resolution-
agnostic) so the file runs in seconds on a CPU.
"""

import pathlib

import jax
import numpy as np
import pytest
from flax import nnx

torch = pytest.importorskip("torch")
from torch import nn  # pylint: disable=g-import-not-at-top
from torch.nn import functional as F  # pylint: disable=g-import-not-at-top

from emojax import errors  # pylint: disable=g-import-not-at-top
from emojax import weights  # pylint: disable=g-import-not-at-top
from emojax.backbones import bn_inception  # pylint: disable=g-import-not-at-top
from emojax.backbones import common  # pylint: disable=g-import-not-at-top
from emojax.backbones import convert  # pylint: disable=g-import-not-at-top
from emojax.backbones import flownet  # pylint: disable=g-import-not-at-top
from emojax.backbones import i3d  # pylint: disable=g-import-not-at-top
from emojax.features import registry  # pylint: disable=g-import-not-at-top

torch.set_num_threads(1)
TOL = 1e-4  # relative to the output's largest magnitude


def assert_close(got, want, tol=TOL):
  got, want = np.asarray(got, np.float64), np.asarray(want, np.float64)
  assert got.shape == want.shape, (got.shape, want.shape)
  scale = max(np.abs(want).max(), 1e-6)
  err = np.abs(got - want).max() / scale
  print(f"relative max error {err:.1e} on {got.shape}")  # shown by pytest -s
  assert err < tol, f"max |jax - torch| / max |torch| = {err:.2e} (tolerance {tol:.0e})"


def generated_state(layout, seed):
  """Random weights in a published layout: He-scaled kernels, plausible BatchNorm statistics."""
  rng = np.random.default_rng(seed)
  out = {}
  for name, shape in layout.items():
    if name.endswith("running_var"):
      a = rng.uniform(0.5, 1.5, shape).astype(np.float32)
    elif name.endswith("running_mean") or name.endswith("bias"):
      a = rng.normal(0, 0.1, shape).astype(np.float32)
    elif len(shape) == 1:  # BatchNorm weight
      a = rng.uniform(0.5, 1.5, shape).astype(np.float32)
    else:
      a = rng.standard_normal(shape, dtype=np.float32)
      a *= np.float32(np.sqrt(2.0 / np.prod(shape[1:])))
    out[name] = torch.from_numpy(a)
  return out


# -- PyTorch references -----------------------------------------------------------------------------

class RefBNInception(nn.Module):
  """Cadene's bninception, compactly: conv (bias) -> BN (eps 1e-5) -> ReLU units."""
  # name, in, 1x1, 3x3 reduce, 3x3, double reduce, double, pool, proj, stride
  SPEC = [("3a", 192, 64, 64, 64, 64, 96, "avg", 32, 1), ("3b", 256, 64, 64, 96, 64, 96, "avg", 64, 1),
          ("3c", 320, 0, 128, 160, 64, 96, "max", 0, 2),
          ("4a", 576, 224, 64, 96, 96, 128, "avg", 128, 1),
          ("4b", 576, 192, 96, 128, 96, 128, "avg", 128, 1),
          ("4c", 576, 160, 128, 160, 128, 160, "avg", 128, 1),
          ("4d", 608, 96, 128, 192, 160, 192, "avg", 128, 1),
          ("4e", 608, 0, 128, 192, 192, 256, "max", 0, 2),
          ("5a", 1056, 352, 192, 320, 160, 224, "avg", 128, 1),
          ("5b", 1024, 352, 192, 320, 192, 224, "max", 128, 1)]

  def __init__(self):
    super().__init__()
    self._unit("conv1_7x7_s2", 3, 64, 7, 2, 3)
    self._unit("conv2_3x3_reduce", 64, 64, 1, 1, 0)
    self._unit("conv2_3x3", 64, 192, 3, 1, 1)
    for b, cin, n1, r3, n3, rd, nd, _, proj, s in self.SPEC:
      p = f"inception_{b}"
      if n1:
        self._unit(f"{p}_1x1", cin, n1, 1, 1, 0)
      self._unit(f"{p}_3x3_reduce", cin, r3, 1, 1, 0)
      self._unit(f"{p}_3x3", r3, n3, 3, s, 1)
      self._unit(f"{p}_double_3x3_reduce", cin, rd, 1, 1, 0)
      self._unit(f"{p}_double_3x3_1", rd, nd, 3, 1, 1)
      self._unit(f"{p}_double_3x3_2", nd, nd, 3, s, 1)
      if proj:
        self._unit(f"{p}_pool_proj", cin, proj, 1, 1, 0)
    self.last_linear = nn.Linear(1024, 1000)

  def _unit(self, name, cin, cout, k, s, pad):
    setattr(self, name, nn.Conv2d(cin, cout, k, stride=s, padding=pad))
    setattr(self, name + "_bn", nn.BatchNorm2d(cout, eps=1e-5, momentum=0.9, affine=True))

  def u(self, name, x):
    return F.relu(getattr(self, name + "_bn")(getattr(self, name)(x)))

  def features(self, x):
    x = self.u("conv1_7x7_s2", x)
    x = F.max_pool2d(x, 3, 2, ceil_mode=True)
    x = self.u("conv2_3x3", self.u("conv2_3x3_reduce", x))
    x = F.max_pool2d(x, 3, 2, ceil_mode=True)
    for b, _, n1, _, _, _, _, kind, proj, s in self.SPEC:
      p = f"inception_{b}"
      outs = [self.u(f"{p}_1x1", x)] if n1 else []
      outs.append(self.u(f"{p}_3x3", self.u(f"{p}_3x3_reduce", x)))
      d = self.u(f"{p}_double_3x3_1", self.u(f"{p}_double_3x3_reduce", x))
      outs.append(self.u(f"{p}_double_3x3_2", d))
      if s == 2:
        pool = F.max_pool2d(x, 3, 2, ceil_mode=True)
      elif kind == "avg":
        pool = F.avg_pool2d(x, 3, 1, 1, ceil_mode=True, count_include_pad=True)
      else:
        pool = F.max_pool2d(x, 3, 1, 1, ceil_mode=True)
      outs.append(self.u(f"{p}_pool_proj", pool) if proj else pool)
      x = torch.cat(outs, 1)
    return x

  def forward(self, x):
    f = self.features(x)
    pooled = F.avg_pool2d(f, f.shape[2:], ceil_mode=True)  # AvgPool2d(7) at 224 px
    return pooled.flatten(1), self.last_linear(pooled.flatten(1))


class RefUnit3D(nn.Module):
  def __init__(self, cin, cout, k, stride=1, logits=False):
    super().__init__()
    self.k, self.s = k, stride
    self.conv3d = nn.Conv3d(cin, cout, k, stride=stride, padding=0, bias=logits)
    self.bn = None if logits else nn.BatchNorm3d(cout, eps=0.001, momentum=0.01)

  def forward(self, x):
    x = F.pad(x, same_pad_5d(x, (self.k,) * 3, (self.s,) * 3))
    x = self.conv3d(x)
    return x if self.bn is None else F.relu(self.bn(x))


def same_pad_5d(x, k, s):
  pads = []
  for size, kk, ss in zip(x.shape[2:], k, s):
    total = max(kk - ss, 0) if size % ss == 0 else max(kk - size % ss, 0)
    pads.append((total // 2, total - total // 2))
  (tf, tb), (hf, hb), (wf, wb) = pads
  return (wf, wb, hf, hb, tf, tb)


def ref_maxpool_same(x, k, s):
  return F.max_pool3d(F.pad(x, same_pad_5d(x, k, s)), k, s)  # the port pads with zeros


class RefMixed(nn.Module):
  def __init__(self, cin, w):
    super().__init__()
    self.b0 = RefUnit3D(cin, w[0], 1)
    self.b1a, self.b1b = RefUnit3D(cin, w[1], 1), RefUnit3D(w[1], w[2], 3)
    self.b2a, self.b2b = RefUnit3D(cin, w[3], 1), RefUnit3D(w[3], w[4], 3)
    self.b3b = RefUnit3D(cin, w[5], 1)

  def forward(self, x):
    b3 = self.b3b(ref_maxpool_same(x, (3, 3, 3), (1, 1, 1)))
    return torch.cat([self.b0(x), self.b1b(self.b1a(x)), self.b2b(self.b2a(x)), b3], 1)


class RefI3D(nn.Module):
  """piergiaj's InceptionI3d, compactly."""

  def __init__(self):
    super().__init__()
    self.Conv3d_1a_7x7 = RefUnit3D(3, 64, 7, 2)
    self.Conv3d_2b_1x1 = RefUnit3D(64, 64, 1)
    self.Conv3d_2c_3x3 = RefUnit3D(64, 192, 3)
    self.Mixed_3b = RefMixed(192, [64, 96, 128, 16, 32, 32])
    self.Mixed_3c = RefMixed(256, [128, 128, 192, 32, 96, 64])
    self.Mixed_4b = RefMixed(128 + 192 + 96 + 64, [192, 96, 208, 16, 48, 64])
    self.Mixed_4c = RefMixed(192 + 208 + 48 + 64, [160, 112, 224, 24, 64, 64])
    self.Mixed_4d = RefMixed(160 + 224 + 64 + 64, [128, 128, 256, 24, 64, 64])
    self.Mixed_4e = RefMixed(128 + 256 + 64 + 64, [112, 144, 288, 32, 64, 64])
    self.Mixed_4f = RefMixed(112 + 288 + 64 + 64, [256, 160, 320, 32, 128, 128])
    self.Mixed_5b = RefMixed(256 + 320 + 128 + 128, [256, 160, 320, 32, 128, 128])
    self.Mixed_5c = RefMixed(256 + 320 + 128 + 128, [384, 192, 384, 48, 128, 128])
    self.logits = RefUnit3D(1024, 400, 1, logits=True)

  def forward(self, x):
    x = self.Conv3d_1a_7x7(x)
    x = ref_maxpool_same(x, (1, 3, 3), (1, 2, 2))
    x = self.Conv3d_2c_3x3(self.Conv3d_2b_1x1(x))
    x = ref_maxpool_same(x, (1, 3, 3), (1, 2, 2))
    x = self.Mixed_3c(self.Mixed_3b(x))
    x = ref_maxpool_same(x, (3, 3, 3), (2, 2, 2))
    for n in ("4b", "4c", "4d", "4e", "4f"):
      x = getattr(self, f"Mixed_{n}")(x)
    x = ref_maxpool_same(x, (2, 2, 2), (2, 2, 2))
    f = self.Mixed_5c(self.Mixed_5b(x))
    pooled = F.avg_pool3d(f, (2,) + tuple(f.shape[3:]), stride=1)  # [2, 7, 7] at 224 px
    logits = self.logits(pooled).squeeze(3).squeeze(3)  # (B, 400, T')
    return f, logits


class RefFlowNetS(nn.Module):
  """ClementPinard's FlowNetS(batchNorm=False), compactly."""

  def __init__(self):
    super().__init__()

    def conv(cin, cout, k=3, s=1):
      return nn.Sequential(nn.Conv2d(cin, cout, k, s, (k - 1) // 2, bias=True),
                           nn.LeakyReLU(0.1))

    def deconv(cin, cout):
      return nn.Sequential(nn.ConvTranspose2d(cin, cout, 4, 2, 1, bias=False), nn.LeakyReLU(0.1))

    self.conv1, self.conv2, self.conv3 = conv(6, 64, 7, 2), conv(64, 128, 5, 2), conv(128, 256, 5, 2)
    self.conv3_1, self.conv4, self.conv4_1 = conv(256, 256), conv(256, 512, s=2), conv(512, 512)
    self.conv5, self.conv5_1 = conv(512, 512, s=2), conv(512, 512)
    self.conv6, self.conv6_1 = conv(512, 1024, s=2), conv(1024, 1024)
    self.deconv5, self.deconv4 = deconv(1024, 512), deconv(1026, 256)
    self.deconv3, self.deconv2 = deconv(770, 128), deconv(386, 64)
    for n, c in ((6, 1024), (5, 1026), (4, 770), (3, 386), (2, 194)):
      setattr(self, f"predict_flow{n}", nn.Conv2d(c, 2, 3, 1, 1, bias=False))
    for a in (6, 5, 4, 3):
      setattr(self, f"upsampled_flow{a}_to_{a - 1}", nn.ConvTranspose2d(2, 2, 4, 2, 1, bias=False))

  def forward(self, x):
    def crop(a, t):
      return a[:, :, :t.size(2), :t.size(3)]
    c2 = self.conv2(self.conv1(x))
    c3 = self.conv3_1(self.conv3(c2))
    c4 = self.conv4_1(self.conv4(c3))
    c5 = self.conv5_1(self.conv5(c4))
    c6 = self.conv6_1(self.conv6(c5))
    flow6 = self.predict_flow6(c6)
    cat5 = torch.cat((c5, crop(self.deconv5(c6), c5), crop(self.upsampled_flow6_to_5(flow6), c5)), 1)
    flow5 = self.predict_flow5(cat5)
    cat4 = torch.cat((c4, crop(self.deconv4(cat5), c4), crop(self.upsampled_flow5_to_4(flow5), c4)), 1)
    flow4 = self.predict_flow4(cat4)
    cat3 = torch.cat((c3, crop(self.deconv3(cat4), c3), crop(self.upsampled_flow4_to_3(flow4), c3)), 1)
    flow3 = self.predict_flow3(cat3)
    cat2 = torch.cat((c2, crop(self.deconv2(cat3), c2), crop(self.upsampled_flow3_to_2(flow3), c2)), 1)
    return c6, self.predict_flow2(cat2)


# -- generated published files ------------------------------------------------------------------------

def _published(tmp, name, ref_cls, layout, seed, *, wrap=None, with_counters=False):
  state = generated_state(layout, seed)
  ref = ref_cls().eval()
  if with_counters:  # files saved by PyTorch >= 0.4 carry BatchNorm's counters
    state.update({k: v for k, v in ref.state_dict().items() if k.endswith("num_batches_tracked")})
  ref.load_state_dict(state, strict=True)  # the layout is the reference's, name for name
  path = tmp / name
  torch.save(wrap(state) if wrap else state, path)
  return path, ref


@pytest.fixture(scope="module")
def files(tmp_path_factory):
  tmp = tmp_path_factory.mktemp("published")
  return {
      "bn_inception": _published(tmp, "bn_inception-52deb4733.pth", RefBNInception,
                                 common.published_layout(bn_inception.BN_INCEPTION), 1,
                                 with_counters=True),
      "i3d": _published(tmp, "rgb_imagenet.pt", RefI3D, common.published_layout(i3d.I3D), 2),
      "flownets": _published(tmp, "flownets_EPE1.951.pth.tar", RefFlowNetS,
                             common.published_layout(flownet.FLOWNETS), 3,
                             wrap=lambda sd: {"epoch": 300, "arch": "flownets", "state_dict": sd,
                                              "best_EPE": 1.951, "div_flow": 20}),
  }


@pytest.fixture(scope="module")
def converted(files, tmp_path_factory):
  """Each generated published file through its converter, once."""
  tmp = tmp_path_factory.mktemp("converted")
  return {"bn_inception": convert.convert("bn_inception", files["bn_inception"][0],
                                          tmp / "bn_inception.npz"),
          "i3d": convert.convert("i3d", files["i3d"][0], tmp / "i3d_rgb.npz"),
          "flownets": convert.convert("flownets", files["flownets"][0], tmp / "flownets.npz")}


def test_bn_inception_matches_torch(files, converted):
  source, ref = files["bn_inception"]
  model, sha = bn_inception.load(converted["bn_inception"])
  assert sha == weights.sha256(source)
  rgb = np.random.default_rng(0).integers(0, 256, (2, 64, 96, 3), dtype=np.uint8)
  x = np.asarray(bn_inception.preprocess(rgb))
  with torch.no_grad():
    want_pool, want_logits = ref(torch.from_numpy(x.transpose(0, 3, 1, 2).copy()))
  # One compiled program; leading axes are kept (TSN's (B, K, H, W, 3) -> (B, K, 1024)).
  got_pool, got_logits = nnx.jit(
      lambda m, x: (lambda p: (p[0], m.last_linear(p[0])))(m.pool(x[None])))(model, x)
  assert_close(got_pool, want_pool)
  assert_close(got_logits, want_logits)
  cut = jax.eval_shape(lambda x: model.endpoint(x, "inception_3c"), x)
  assert cut.shape == (2, 4, 6, 576)  # ECO's 2-D part ends at inception_3c


def test_bn_inception_trains_as_tsn_backbone(files, converted):
  """model.train(): batch statistics, as torch's train mode; partial_bn keeps every BatchNorm but
  the first on its running statistics (TSN's partial BN), and gradients reach the first conv."""
  ref = files["bn_inception"][1]
  model, _ = bn_inception.load(converted["bn_inception"], partial_bn=True)
  model.train()
  x = np.asarray(bn_inception.preprocess(
      np.random.default_rng(3).integers(0, 256, (3, 64, 64, 3), dtype=np.uint8)))
  ref.conv1_7x7_s2_bn.train()  # the others stay in eval mode
  try:
    with torch.no_grad():
      want_pool, _ = ref(torch.from_numpy(x.transpose(0, 3, 1, 2).copy()))
  finally:
    ref.eval()

  def loss(m, x):
    p = m.pool(x)
    return (p ** 2).mean(), p

  grads, got_pool = nnx.jit(nnx.grad(loss, has_aux=True))(model, x)
  assert_close(got_pool, want_pool)
  assert np.abs(np.asarray(grads.conv1_7x7_s2.kernel[...])).max() > 0


def test_i3d_matches_torch(files, converted):
  ref = files["i3d"][1]
  model, _ = i3d.load(converted["i3d"])
  rgb = np.random.default_rng(1).integers(0, 256, (1, 16, 48, 40, 3), dtype=np.uint8)
  x = np.asarray(i3d.preprocess(rgb))
  with torch.no_grad():
    f, logits = ref(torch.from_numpy(x.transpose(0, 4, 1, 2, 3).copy()))
  got_f, got_logits = nnx.jit(lambda m, x: (m.features(x), m(x)))(model, x)
  assert_close(got_f, f.numpy().transpose(0, 2, 3, 4, 1))
  assert_close(got_logits, logits.numpy().transpose(0, 2, 1))
  # The i3d_rgb extractor's row of these 16 frames: Mixed_5c averaged over time and space.
  extractor = registry.create("i3d_rgb", {"weights_path": str(converted["i3d"])})
  assert_close(extractor.clip_row(rgb[0]), f.mean((2, 3, 4))[0])


def test_flownets_matches_torch(files, converted):
  ref = files["flownets"][1]
  model, _ = flownet.load(converted["flownets"])
  rng = np.random.default_rng(2)
  a, b = (rng.integers(0, 256, (2, 64, 128, 3), dtype=np.uint8) for _ in range(2))
  x = np.asarray(flownet.preprocess(a, b))
  with torch.no_grad():
    c6, flow2 = ref(torch.from_numpy(x.transpose(0, 3, 1, 2).copy()))
  got_flow, got_c6, got_pool = nnx.jit(lambda m, x: (m(x), m.encode(x), m.pool(x)))(model, x)
  assert_close(got_flow, flow2.numpy().transpose(0, 2, 3, 1))
  assert_close(got_c6, c6.numpy().transpose(0, 2, 3, 1))
  assert_close(got_pool, c6.mean((2, 3)))
  # The flownets extractor's row of 3 frames: pairs (0, 1) and (1, 2), conv6_1 averaged over
  # space and over the pairs; odd maps (40 x 56 -> 1 x 1, as 224 px gives 7 -> 4).
  frames = rng.integers(0, 256, (3, 40, 56, 3), dtype=np.uint8)
  odd = np.asarray(flownet.preprocess(frames[:2], frames[1:]))
  with torch.no_grad():
    c6_odd, _ = ref(torch.from_numpy(odd.transpose(0, 3, 1, 2).copy()))
  extractor = registry.create("flownets", {"weights_path": str(converted["flownets"])})
  assert_close(extractor.clip_row(frames), c6_odd.mean((2, 3)).mean(0))


# -- converter errors ---------------------------------------------------------------------------------

def test_converter_refuses_a_foreign_file(files, tmp_path):
  with pytest.raises(errors.WeightsError, match=r"rgb_imagenet\.pt: parameter 'conv1_7x7_s2\."
                     r"weight' of the expected layout \(Cadene pretrainedmodels bninception\) "
                     r"is missing"):
    convert.convert("bn_inception", files["i3d"][0], tmp_path / "x.npz")
  assert not (tmp_path / "x.npz").exists()


def test_converter_refuses_a_wrong_shape(tmp_path):
  # I3D's layout but one unit of another width (the check names the first misfit).
  state = generated_state(common.published_layout(i3d.I3D), 4)
  state["Mixed_5c.b0.conv3d.weight"] = state["Mixed_5c.b0.conv3d.weight"][:256]
  path = tmp_path / "rgb_other.pt"
  torch.save(state, path)
  with pytest.raises(errors.WeightsError, match=r"rgb_other\.pt: parameter "
                     r"'Mixed_5c\.b0\.conv3d\.weight' has shape \(256, 832, 1, 1, 1\), "
                     r"expected \(384, 832, 1, 1, 1\) \(piergiaj pytorch-i3d InceptionI3d\)"):
    convert.convert("i3d", path, tmp_path / "x.npz")


def test_converter_refuses_a_truncated_file(files, tmp_path):
  data = pathlib.Path(files["i3d"][0]).read_bytes()
  path = tmp_path / "rgb_imagenet.pt"
  path.write_bytes(data[:len(data) // 2])
  with pytest.raises(errors.WeightsError, match=r"rgb_imagenet\.pt: cannot read the i3d source "
                     r"file as a PyTorch state dict"):
    convert.convert("i3d", path, tmp_path / "x.npz")


def test_loader_refuses_another_networks_file(converted):
  out = converted["i3d"]
  with pytest.raises(errors.WeightsError, match=r"i3d_rgb\.npz: holds converted 'i3d' weights, "
                     r"expected 'flownets'"):
    flownet.load(out)


def test_converter_cli(files, tmp_path, capsys):
  """`python -m emojax.backbones.convert` converts part B's networks into the one format."""
  out = tmp_path / "bn.npz"
  assert convert.network("bn_inception") is bn_inception.BN_INCEPTION
  assert tl_main(["--source", str(files["bn_inception"][0]), "--out", str(out)]) == 0
  assert "wrote" in capsys.readouterr().out and out.is_file()
  loaded = convert.load(out)  # the one loader reads it: network, config and source recorded
  assert (loaded.network, loaded.config) == ("bn_inception", {"num_classes": 1000})
  assert loaded.source_sha256 == weights.sha256(files["bn_inception"][0])
  assert loaded.source_file == "bn_inception-52deb4733.pth"
  with np.load(out) as z:
    assert {k for k in z.files if k.startswith(common.META_PREFIX)} == {
        "meta.network", "meta.config", "meta.source_file", "meta.source_sha256"}
  assert tl_main(["--source", str(files["i3d"][0]), "--out", str(tmp_path / "y.npz")]) == 2
  assert "is missing" in capsys.readouterr().err


def tl_main(argv):
  return convert.main(["--network=bn_inception", *argv])


# -- extractors ---------------------------------------------------------------------------------------

def test_bn_inception_pool_through_the_engine(files, converted, tmp_path):
  """The real film excerpt through the cached extraction engine, against the network run on the
  decoded frames directly; the manifest names the network, layer, weights and preprocessing."""
  from conftest import MEDIA_FIXTURE  # pylint: disable=g-import-not-at-top
  from emojax.datasets import film_builder  # pylint: disable=g-import-not-at-top
  from emojax.features import backbone_video, decode, manifest  # pylint: disable=g-import-not-at-top
  source = files["bn_inception"][0]
  npz = converted["bn_inception"]
  spec = {"bn_inception_pool": {"weights_path": str(npz), "level": "second", "num_frames": 2,
                                "short_side": 72, "crop": 64}}
  man = manifest.for_spec(spec)
  run = lambda: film_builder.extract_films(  # noqa: E731
      [("bbb", str(MEDIA_FIXTURE))], cache_dir=tmp_path / "cache", extractors=spec,
      manifest=man, num_workers=0)["bbb"]
  outcome = run()
  assert outcome["status"] == "ok" and not outcome["cached"]
  streams, _ = film_builder.load_cached(outcome["cache"])
  rows = streams["bn_inception_pool"]
  entry = man["extractors"]["bn_inception_pool"]
  assert entry["per"] == "second" and entry["shape"] == [1024] and rows.shape == (5, 1024)
  p = entry["params"]
  assert p["weights_sha256"] == weights.sha256(npz)
  assert p["source_sha256"] == weights.sha256(source)
  assert "bn_inception" in p["network"] and "inception_5b" in p["layer"]
  assert "104, 117, 128" in p["preprocessing"] and p["crop"] == 64
  assert run()["cached"]  # a rerun reads the cache

  # Directly: every decoded frame, the one on screen at s + 1/4 and s + 3/4, resized (1280 x 720
  # -> short side 72: 128 x 72), centre-cropped to 64 x 64, BN-Inception, mean per second.
  frames = list(decode.iter_video_frames(MEDIA_FIXTURE, until_s=5.0))
  times = np.array([f.t for f in frames])
  targets = (np.arange(10) + 0.5) / 2
  picks = [frames[max(np.searchsorted(times, t + 1e-9, side="right") - 1, 0)] for t in targets]
  crops = np.stack([f.rgb(128, 72)[4:68, 32:96] for f in picks])
  model, _ = bn_inception.load(npz)
  graphdef, state = nnx.split(model)  # the extractor's compiled program: batches of 2 frames
  x = np.asarray(bn_inception.preprocess(crops))
  want = np.concatenate([backbone_video._apply(graphdef, "pool", state, x[i:i + 2])  # pylint: disable=protected-access
                         for i in range(0, 10, 2)])
  assert_close(rows, want.reshape(5, 2, 1024).mean(1))


def test_extractor_params_are_checked(converted):
  npz = converted["i3d"]
  ex = registry.create("i3d_rgb", {"weights_path": str(npz)})
  assert ex.params["num_frames"] == 64 and ex.per == "clip" and ex.num_rows(7) == 1
  with pytest.raises(errors.ConfigError, match="layer is"):
    registry.create("i3d_rgb", {"weights_path": str(npz), "layer": "Mixed_4f"})
  with pytest.raises(errors.ConfigError, match="weights_sha256"):
    registry.create("i3d_rgb", {"weights_path": str(npz), "weights_sha256": "0" * 64})
  with pytest.raises(errors.WeightsError,
                     match="holds converted 'i3d' weights, but flownets takes flownets"):
    registry.create("flownets", {"weights_path": str(npz)})
  with pytest.raises(errors.ConfigError, match="num_frames must be >= 2"):
    registry.create("flownets", {"weights_path": str(npz), "num_frames": 1})
  with pytest.raises(errors.ConfigError, match="crop must be a multiple of 32"):
    registry.create("bn_inception_pool", {"weights_path": str(converted["bn_inception"]),
                                          "crop": 200})


def test_the_converter_cli_lists_and_runs_each_network_of_part_b(tmp_path):
  """`python -m emojax.backbones.convert --network=...` reaches the converters of this part."""
  for name in ("bn_inception", "i3d", "flownets"):
    assert name in convert.NETWORKS
  bad = tmp_path / "foreign.npz"
  np.savez(bad, **{"fc.weight": np.zeros((2, 2), np.float32)})
  for name in ("bn_inception", "i3d", "flownets"):
    assert convert.main([f"--network={name}", f"--source={bad}", f"--out={tmp_path / 'o.npz'}"]) == 2
    assert not (tmp_path / "o.npz").exists()
