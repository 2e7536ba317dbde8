"""ResNet-50, VGG16, AlexNet and Inception-v3 (emojax.backbones) against PyTorch.

The reference networks below are plain-torch re-statements of torchvision's module trees (names,
kernel sizes, strides, paddings, pools, flatten order), written from torchvision's source and not
from emojax's code, with a width multiplier so they run in a few milliseconds. A generated state
dict of the reference is saved in the published file's form (`.pth`; the Places365 `.pth.tar`
wrapper with `module.` prefixes), converted by `emojax.backbones.convert`, loaded into the Flax
model, and both forwards must agree to 1e-4. Loading a state dict into the reference with
`load_state_dict(strict=True)` is what proves the layout is torchvision's; the published
parameter counts (torchvision's model cards) prove the full-size layouts.
"""

import functools
import json

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
import torch
from flax import nnx
from torch import nn
from torch.nn import functional as F

from emojax import errors
from emojax.backbones import common
from emojax.backbones import convert

TOL = 1e-4
W = 1 / 16  # width multiplier of the generated networks


def w(n):
  return max(1, int(round(n * W)))


# -- torch re-statements of torchvision's networks ------------------------------------------------
class TBottleneck(nn.Module):

  def __init__(self, inplanes, planes, stride, downsample):
    super().__init__()
    self.conv1 = nn.Conv2d(inplanes, planes, 1, bias=False)
    self.bn1 = nn.BatchNorm2d(planes)
    self.conv2 = nn.Conv2d(planes, planes, 3, stride=stride, padding=1, bias=False)
    self.bn2 = nn.BatchNorm2d(planes)
    self.conv3 = nn.Conv2d(planes, planes * 4, 1, bias=False)
    self.bn3 = nn.BatchNorm2d(planes * 4)
    self.relu = nn.ReLU(inplace=True)
    self.downsample = downsample

  def forward(self, x):
    identity = x
    out = self.relu(self.bn1(self.conv1(x)))
    out = self.relu(self.bn2(self.conv2(out)))
    out = self.bn3(self.conv3(out))
    if self.downsample is not None:
      identity = self.downsample(x)
    return self.relu(out + identity)


class TResNet50(nn.Module):

  def __init__(self, num_classes):
    super().__init__()
    self.inplanes = w(64)
    self.conv1 = nn.Conv2d(3, self.inplanes, 7, stride=2, padding=3, bias=False)
    self.bn1 = nn.BatchNorm2d(self.inplanes)
    self.relu = nn.ReLU(inplace=True)
    self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
    self.layer1 = self._make_layer(w(64), 3, 1)
    self.layer2 = self._make_layer(w(128), 4, 2)
    self.layer3 = self._make_layer(w(256), 6, 2)
    self.layer4 = self._make_layer(w(512), 3, 2)
    self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
    self.fc = nn.Linear(w(512) * 4, num_classes)

  def _make_layer(self, planes, blocks, stride):
    downsample = nn.Sequential(nn.Conv2d(self.inplanes, planes * 4, 1, stride=stride, bias=False),
                               nn.BatchNorm2d(planes * 4))
    layers = [TBottleneck(self.inplanes, planes, stride, downsample)]
    self.inplanes = planes * 4
    layers += [TBottleneck(self.inplanes, planes, 1, None) for _ in range(1, blocks)]
    return nn.Sequential(*layers)

  def forward(self, x, layer="pool"):
    x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
    x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
    x = torch.flatten(self.avgpool(x), 1)
    return x if layer == "pool" else self.fc(x)


def _vgg_features():
  layers, cin = [], 3
  for v in (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512,
            "M"):
    if v == "M":
      layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
    else:
      layers += [nn.Conv2d(cin, w(v), kernel_size=3, padding=1), nn.ReLU(inplace=True)]
      cin = w(v)
  return nn.Sequential(*layers)


class TVGG16(nn.Module):

  def __init__(self, fc, num_classes):
    super().__init__()
    self.features = _vgg_features()
    self.avgpool = nn.AdaptiveAvgPool2d((7, 7))
    self.classifier = nn.Sequential(
        nn.Linear(w(512) * 7 * 7, fc), nn.ReLU(True), nn.Dropout(),
        nn.Linear(fc, fc), nn.ReLU(True), nn.Dropout(), nn.Linear(fc, num_classes))

  def forward(self, x, layer="fc7"):
    x = self.features(x)
    if layer == "pool5_mean":
      return x.mean(dim=(2, 3))
    x = torch.flatten(self.avgpool(x), 1)
    return self.classifier[:5](x) if layer == "fc7" else self.classifier(x)


class TAlexNet(nn.Module):

  def __init__(self, fc, num_classes):
    super().__init__()
    self.features = nn.Sequential(
        nn.Conv2d(3, w(64), kernel_size=11, stride=4, padding=2), nn.ReLU(inplace=True),
        nn.MaxPool2d(kernel_size=3, stride=2),
        nn.Conv2d(w(64), w(192), kernel_size=5, padding=2), nn.ReLU(inplace=True),
        nn.MaxPool2d(kernel_size=3, stride=2),
        nn.Conv2d(w(192), w(384), kernel_size=3, padding=1), nn.ReLU(inplace=True),
        nn.Conv2d(w(384), w(256), kernel_size=3, padding=1), nn.ReLU(inplace=True),
        nn.Conv2d(w(256), w(256), kernel_size=3, padding=1), nn.ReLU(inplace=True),
        nn.MaxPool2d(kernel_size=3, stride=2))
    self.avgpool = nn.AdaptiveAvgPool2d((6, 6))
    self.classifier = nn.Sequential(
        nn.Dropout(), nn.Linear(w(256) * 6 * 6, fc), nn.ReLU(inplace=True),
        nn.Dropout(), nn.Linear(fc, fc), nn.ReLU(inplace=True), nn.Linear(fc, num_classes))

  def forward(self, x, layer="fc7"):
    x = torch.flatten(self.avgpool(self.features(x)), 1)
    return self.classifier[:6](x) if layer == "fc7" else self.classifier(x)


class TBasicConv2d(nn.Module):

  def __init__(self, cin, cout, **kwargs):
    super().__init__()
    self.conv = nn.Conv2d(cin, cout, bias=False, **kwargs)
    self.bn = nn.BatchNorm2d(cout, eps=0.001)

  def forward(self, x):
    return F.relu(self.bn(self.conv(x)), inplace=True)


class TInceptionA(nn.Module):

  def __init__(self, cin, pool_features):
    super().__init__()
    self.branch1x1 = TBasicConv2d(cin, w(64), kernel_size=1)
    self.branch5x5_1 = TBasicConv2d(cin, w(48), kernel_size=1)
    self.branch5x5_2 = TBasicConv2d(w(48), w(64), kernel_size=5, padding=2)
    self.branch3x3dbl_1 = TBasicConv2d(cin, w(64), kernel_size=1)
    self.branch3x3dbl_2 = TBasicConv2d(w(64), w(96), kernel_size=3, padding=1)
    self.branch3x3dbl_3 = TBasicConv2d(w(96), w(96), kernel_size=3, padding=1)
    self.branch_pool = TBasicConv2d(cin, w(pool_features), kernel_size=1)

  def forward(self, x):
    b1 = self.branch1x1(x)
    b5 = self.branch5x5_2(self.branch5x5_1(x))
    b3 = self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x)))
    bp = self.branch_pool(F.avg_pool2d(x, kernel_size=3, stride=1, padding=1))
    return torch.cat([b1, b5, b3, bp], 1)


class TInceptionB(nn.Module):

  def __init__(self, cin):
    super().__init__()
    self.branch3x3 = TBasicConv2d(cin, w(384), kernel_size=3, stride=2)
    self.branch3x3dbl_1 = TBasicConv2d(cin, w(64), kernel_size=1)
    self.branch3x3dbl_2 = TBasicConv2d(w(64), w(96), kernel_size=3, padding=1)
    self.branch3x3dbl_3 = TBasicConv2d(w(96), w(96), kernel_size=3, stride=2)

  def forward(self, x):
    b3 = self.branch3x3(x)
    bd = self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x)))
    return torch.cat([b3, bd, F.max_pool2d(x, kernel_size=3, stride=2)], 1)


class TInceptionC(nn.Module):

  def __init__(self, cin, channels_7x7):
    super().__init__()
    c7 = w(channels_7x7)
    self.branch1x1 = TBasicConv2d(cin, w(192), kernel_size=1)
    self.branch7x7_1 = TBasicConv2d(cin, c7, kernel_size=1)
    self.branch7x7_2 = TBasicConv2d(c7, c7, kernel_size=(1, 7), padding=(0, 3))
    self.branch7x7_3 = TBasicConv2d(c7, w(192), kernel_size=(7, 1), padding=(3, 0))
    self.branch7x7dbl_1 = TBasicConv2d(cin, c7, kernel_size=1)
    self.branch7x7dbl_2 = TBasicConv2d(c7, c7, kernel_size=(7, 1), padding=(3, 0))
    self.branch7x7dbl_3 = TBasicConv2d(c7, c7, kernel_size=(1, 7), padding=(0, 3))
    self.branch7x7dbl_4 = TBasicConv2d(c7, c7, kernel_size=(7, 1), padding=(3, 0))
    self.branch7x7dbl_5 = TBasicConv2d(c7, w(192), kernel_size=(1, 7), padding=(0, 3))
    self.branch_pool = TBasicConv2d(cin, w(192), kernel_size=1)

  def forward(self, x):
    b1 = self.branch1x1(x)
    b7 = self.branch7x7_3(self.branch7x7_2(self.branch7x7_1(x)))
    bd = self.branch7x7dbl_1(x)
    bd = self.branch7x7dbl_5(self.branch7x7dbl_4(self.branch7x7dbl_3(self.branch7x7dbl_2(bd))))
    bp = self.branch_pool(F.avg_pool2d(x, kernel_size=3, stride=1, padding=1))
    return torch.cat([b1, b7, bd, bp], 1)


class TInceptionD(nn.Module):

  def __init__(self, cin):
    super().__init__()
    self.branch3x3_1 = TBasicConv2d(cin, w(192), kernel_size=1)
    self.branch3x3_2 = TBasicConv2d(w(192), w(320), kernel_size=3, stride=2)
    self.branch7x7x3_1 = TBasicConv2d(cin, w(192), kernel_size=1)
    self.branch7x7x3_2 = TBasicConv2d(w(192), w(192), kernel_size=(1, 7), padding=(0, 3))
    self.branch7x7x3_3 = TBasicConv2d(w(192), w(192), kernel_size=(7, 1), padding=(3, 0))
    self.branch7x7x3_4 = TBasicConv2d(w(192), w(192), kernel_size=3, stride=2)

  def forward(self, x):
    b3 = self.branch3x3_2(self.branch3x3_1(x))
    b7 = self.branch7x7x3_4(self.branch7x7x3_3(self.branch7x7x3_2(self.branch7x7x3_1(x))))
    return torch.cat([b3, b7, F.max_pool2d(x, kernel_size=3, stride=2)], 1)


class TInceptionE(nn.Module):

  def __init__(self, cin):
    super().__init__()
    self.branch1x1 = TBasicConv2d(cin, w(320), kernel_size=1)
    self.branch3x3_1 = TBasicConv2d(cin, w(384), kernel_size=1)
    self.branch3x3_2a = TBasicConv2d(w(384), w(384), kernel_size=(1, 3), padding=(0, 1))
    self.branch3x3_2b = TBasicConv2d(w(384), w(384), kernel_size=(3, 1), padding=(1, 0))
    self.branch3x3dbl_1 = TBasicConv2d(cin, w(448), kernel_size=1)
    self.branch3x3dbl_2 = TBasicConv2d(w(448), w(384), kernel_size=3, padding=1)
    self.branch3x3dbl_3a = TBasicConv2d(w(384), w(384), kernel_size=(1, 3), padding=(0, 1))
    self.branch3x3dbl_3b = TBasicConv2d(w(384), w(384), kernel_size=(3, 1), padding=(1, 0))
    self.branch_pool = TBasicConv2d(cin, w(192), kernel_size=1)

  def forward(self, x):
    b1 = self.branch1x1(x)
    b3 = self.branch3x3_1(x)
    b3 = torch.cat([self.branch3x3_2a(b3), self.branch3x3_2b(b3)], 1)
    bd = self.branch3x3dbl_2(self.branch3x3dbl_1(x))
    bd = torch.cat([self.branch3x3dbl_3a(bd), self.branch3x3dbl_3b(bd)], 1)
    bp = self.branch_pool(F.avg_pool2d(x, kernel_size=3, stride=1, padding=1))
    return torch.cat([b1, b3, bd, bp], 1)


class TInceptionAux(nn.Module):

  def __init__(self, cin, num_classes):
    super().__init__()
    self.conv0 = TBasicConv2d(cin, w(128), kernel_size=1)
    self.conv1 = TBasicConv2d(w(128), w(768), kernel_size=5)
    self.fc = nn.Linear(w(768), num_classes)


class TInception3(nn.Module):

  def __init__(self, num_classes):
    super().__init__()
    self.Conv2d_1a_3x3 = TBasicConv2d(3, w(32), kernel_size=3, stride=2)
    self.Conv2d_2a_3x3 = TBasicConv2d(w(32), w(32), kernel_size=3)
    self.Conv2d_2b_3x3 = TBasicConv2d(w(32), w(64), kernel_size=3, padding=1)
    self.maxpool1 = nn.MaxPool2d(kernel_size=3, stride=2)
    self.Conv2d_3b_1x1 = TBasicConv2d(w(64), w(80), kernel_size=1)
    self.Conv2d_4a_3x3 = TBasicConv2d(w(80), w(192), kernel_size=3)
    self.maxpool2 = nn.MaxPool2d(kernel_size=3, stride=2)
    c5 = [w(192), w(64) * 2 + w(96) + w(32), w(64) * 3 + w(96)]
    self.Mixed_5b = TInceptionA(c5[0], pool_features=32)
    self.Mixed_5c = TInceptionA(c5[1], pool_features=64)
    self.Mixed_5d = TInceptionA(c5[2], pool_features=64)
    self.Mixed_6a = TInceptionB(c5[2])
    c6 = w(384) + w(96) + c5[2]
    self.Mixed_6b = TInceptionC(c6, channels_7x7=128)
    self.Mixed_6c = TInceptionC(4 * w(192), channels_7x7=160)
    self.Mixed_6d = TInceptionC(4 * w(192), channels_7x7=160)
    self.Mixed_6e = TInceptionC(4 * w(192), channels_7x7=192)
    self.AuxLogits = TInceptionAux(4 * w(192), num_classes)
    self.Mixed_7a = TInceptionD(4 * w(192))
    c7 = w(320) + w(192) + 4 * w(192)
    self.Mixed_7b = TInceptionE(c7)
    self.Mixed_7c = TInceptionE(w(320) + 4 * w(384) + w(192))
    self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
    self.fc = nn.Linear(w(2048), num_classes)

  def forward(self, x):
    # torchvision's _transform_input (transform_input=True for the Google weights)
    x0 = torch.unsqueeze(x[:, 0], 1) * (0.229 / 0.5) + (0.485 - 0.5) / 0.5
    x1 = torch.unsqueeze(x[:, 1], 1) * (0.224 / 0.5) + (0.456 - 0.5) / 0.5
    x2 = torch.unsqueeze(x[:, 2], 1) * (0.225 / 0.5) + (0.406 - 0.5) / 0.5
    x = torch.cat((x0, x1, x2), 1)
    x = self.maxpool1(self.Conv2d_2b_3x3(self.Conv2d_2a_3x3(self.Conv2d_1a_3x3(x))))
    x = self.maxpool2(self.Conv2d_4a_3x3(self.Conv2d_3b_1x1(x)))
    for name in ("Mixed_5b", "Mixed_5c", "Mixed_5d", "Mixed_6a", "Mixed_6b", "Mixed_6c",
                 "Mixed_6d", "Mixed_6e", "Mixed_7a", "Mixed_7b", "Mixed_7c"):
      x = getattr(self, name)(x)
    return torch.flatten(self.avgpool(x), 1)


# -- generated published files --------------------------------------------------------------------
def _randomise(model: nn.Module, seed: int) -> nn.Module:
  """Random weights with non-trivial BatchNorm statistics, scaled so activations stay O(1)."""
  torch.manual_seed(seed)
  with torch.no_grad():
    for m in model.modules():
      if isinstance(m, nn.BatchNorm2d):
        m.weight.uniform_(0.5, 1.0)
        m.bias.uniform_(-0.2, 0.2)
        m.running_mean.uniform_(-0.2, 0.2)
        m.running_var.uniform_(0.5, 2.0)
        m.num_batches_tracked.fill_(7)
      elif isinstance(m, (nn.Conv2d, nn.Linear)):
        fan_in = m.weight[0].numel()
        m.weight.normal_(0.0, (2.0 / fan_in) ** 0.5)
        if m.bias is not None:
          m.bias.uniform_(-0.1, 0.1)
  return model.eval()


# name: (reference builder, config of the narrow network, input size, layers compared)
CASES = {
    "resnet50": (lambda: TResNet50(1000), {"width": W}, 64, ("pool", "logits")),
    "resnet50_places365": (lambda: TResNet50(365), {"width": W}, 64, ("pool",)),
    "vgg16": (lambda: TVGG16(48, 1000), {"width": W, "fc": 48}, 64,
              ("pool5_mean", "fc7", "logits")),
    "vgg16_places365": (lambda: TVGG16(48, 365), {"width": W, "fc": 48}, 64, ("pool5_mean",)),
    "alexnet": (lambda: TAlexNet(40, 1000), {"width": W, "fc": 40}, 224, ("fc7", "logits")),
    "alexnet_places365": (lambda: TAlexNet(40, 365), {"width": W, "fc": 40}, 127, ("fc7",)),
    "inception_v3": (lambda: TInception3(1000), {"width": W}, 75, ("pool",)),
}


def _save_published(name: str, model: nn.Module, directory) -> str:
  sd = model.state_dict()
  if name.endswith("places365"):  # CSAIL's checkpoint: wrapped, DataParallel prefixes
    path = directory / f"{name}.pth.tar"
    torch.save({"epoch": 90, "arch": name.split("_")[0],
                "state_dict": {f"module.{k}": v for k, v in sd.items()}}, path)
  else:
    path = directory / f"{name}.pth"
    torch.save(sd, path)
  return path


@pytest.fixture(scope="module")
def published(tmp_path_factory):
  """{name: (torch reference, published file, converted .npz)} for every network."""
  d = tmp_path_factory.mktemp("backbones")
  out = {}
  for i, (name, (make, config, _, _)) in enumerate(CASES.items()):
    ref = _randomise(make(), seed=i)
    # strict=True: the generated dict is exactly the reference's (torchvision's) layout.
    ref.load_state_dict(ref.state_dict(), strict=True)
    src = _save_published(name, ref, d)
    out[name] = (ref, src, convert.convert(name, src, d / f"{name}.npz", config))
  return out


@functools.partial(jax.jit, static_argnums=(0, 3))
def _jit_forward(graphdef, state, x, layer):
  """One compiled program per network and layer (cached across runs by conftest's JAX cache)."""
  return nnx.merge(graphdef, state)(x, layer)


def flax_out(model, x_nhwc, layer):
  graphdef, state = nnx.split(model)
  return np.asarray(_jit_forward(graphdef, state, jnp.asarray(x_nhwc, jnp.float32), layer))


def _torch_out(ref, name, x_nchw, layer):
  with torch.no_grad():
    if name == "inception_v3":
      return ref(x_nchw).numpy()
    return ref(x_nchw, layer).numpy()


@pytest.mark.parametrize("name", list(CASES))
def test_matches_pytorch(published, name):
  ref, src, npz = published[name]
  _, _, size, layers = CASES[name]
  loaded = convert.load(npz, name)
  x = np.random.default_rng(1).normal(size=(2, 3, size, size)).astype(np.float32)
  for layer in layers:
    want = _torch_out(ref, name, torch.from_numpy(x), layer)
    got = flax_out(loaded.model, x.transpose(0, 2, 3, 1), layer)
    assert got.shape == want.shape, (layer, got.shape, want.shape)
    assert np.abs(want).max() > 0.05  # a dead network would match trivially
    np.testing.assert_allclose(got, want, atol=TOL, rtol=TOL, err_msg=f"{name} {layer}")
  assert loaded.network == name
  from emojax import weights  # pylint: disable=import-outside-toplevel
  assert loaded.source_sha256 == weights.sha256(src)
  assert loaded.source_file == src.name


def test_published_parameter_counts():
  """Full-size layouts against torchvision's published parameter counts (model cards) and a few
  published shapes (the 365-class Places365 heads are checked at narrow width above)."""
  counts = {"resnet50": 25_557_032, "vgg16": 138_357_544, "alexnet": 61_100_840,
            "inception_v3": 27_161_264}  # inception_v3 includes AuxLogits, as published
  shapes = {"resnet50": {"layer4.2.conv3.weight": (2048, 512, 1, 1), "fc.weight": (1000, 2048),
                         "layer2.0.downsample.0.weight": (512, 256, 1, 1)},
            "vgg16": {"features.28.weight": (512, 512, 3, 3),
                      "classifier.0.weight": (4096, 25088)},
            "alexnet": {"features.10.weight": (256, 256, 3, 3),
                        "classifier.1.weight": (4096, 9216)},
            "inception_v3": {"Mixed_7c.branch_pool.conv.weight": (192, 2048, 1, 1),
                             "AuxLogits.fc.weight": (1000, 768), "fc.weight": (1000, 2048)}}
  for name, want in shapes.items():
    net = convert.network(name)
    layout = {**common.torch_layout(common.abstract_model(net, net.default_config)),
              **net.extra_layout(net.default_config)}
    for k, shape in want.items():
      assert layout[k] == shape, (name, k)
    if name in counts:
      n = sum(int(np.prod(s)) for k, s in layout.items() if ".running_" not in k)
      assert n == counts[name], name


def test_alexnet_trains_with_dropout(published):
  """Seed 002 fine-tunes AlexNet: dropout is active with train=True, off at inference, and a few
  SGD steps on the fc7 -> output path lower the loss."""
  model = convert.load(published["alexnet"][2], "alexnet").model
  x = jnp.asarray(np.random.default_rng(2).normal(size=(4, 67, 67, 3)), jnp.float32)
  y = jnp.asarray(np.random.default_rng(3).normal(size=(4, 1000)), jnp.float32)
  eval_out = model(x, "logits")
  np.testing.assert_array_equal(np.asarray(model(x, "logits")), np.asarray(eval_out))
  a = model(x, "fc7", train=True, rngs=nnx.Rngs(dropout=0))
  b = model(x, "fc7", train=True, rngs=nnx.Rngs(dropout=1))
  assert not np.allclose(np.asarray(a), np.asarray(b))
  np.testing.assert_array_equal(  # the same dropout key, the same mask
      np.asarray(model(x, "fc7", train=True, rngs=nnx.Rngs(dropout=0))), np.asarray(a))

  optimizer = nnx.Optimizer(model, optax.sgd(1e-3), wrt=nnx.Param)

  def loss_fn(m, rngs):
    return jnp.mean((m(x, "logits", train=True, rngs=rngs) - y) ** 2)

  @nnx.jit
  def step(m, opt, rngs):
    loss, grads = nnx.value_and_grad(loss_fn)(m, rngs)
    opt.update(m, grads)
    return loss

  first = float(loss_fn(model, nnx.Rngs(dropout=5)))
  for i in range(3):
    step(model, optimizer, nnx.Rngs(dropout=i))
  assert float(loss_fn(model, nnx.Rngs(dropout=5))) < first


def test_pooling_matches_torch():
  """The shared pools against torch's functional ones: padded and ceil-mode max pools (the latter
  for the Caffe-era networks), count_include_pad average pools, resampling adaptive pools."""
  x = np.random.default_rng(5).normal(size=(2, 3, 13, 10)).astype(np.float32)
  xt, xj = torch.from_numpy(x), jnp.asarray(x.transpose(0, 2, 3, 1))

  def check(got, want):
    np.testing.assert_allclose(np.asarray(got), want.numpy().transpose(0, 2, 3, 1), atol=1e-6)

  for k, st, p in ((3, 2, 0), (3, 2, 1), (2, 2, 0), (3, 1, 1)):
    for ceil in (False, True):
      check(common.max_pool(xj, k, st, p, ceil_mode=ceil),
            F.max_pool2d(xt, k, st, p, ceil_mode=ceil))
    check(common.avg_pool(xj, k, st, p), F.avg_pool2d(xt, k, st, p))
  for out in ((6, 6), (7, 7), (4, 3), (13, 10), (1, 1)):
    check(common.adaptive_avg_pool(xj, out), F.adaptive_avg_pool2d(xt, out))


# -- converter errors -----------------------------------------------------------------------------
def test_foreign_file_names_the_parameter(published, tmp_path):
  with pytest.raises(errors.WeightsError, match=r"vgg16\.pth: parameter '[\w.]+' of the "
                     r"expected layout \(torchvision resnet50\) is missing"):
    convert.convert("resnet50", published["vgg16"][1], tmp_path / "x.npz", {"width": W})
  assert not (tmp_path / "x.npz").exists()


def test_wrong_shape_names_the_parameter(published, tmp_path):
  sd = torch.load(published["alexnet"][1], weights_only=True)
  sd["features.6.weight"] = sd["features.6.weight"][:, :-1]
  torch.save(sd, tmp_path / "alexnet-owt.pth")
  with pytest.raises(errors.WeightsError, match=r"alexnet-owt\.pth.*'features\.6\.weight' has "
                     r"shape \(24, 11, 3, 3\), expected \(24, 12, 3, 3\)"):
    convert.convert("alexnet", tmp_path / "alexnet-owt.pth", tmp_path / "x.npz",
                    CASES["alexnet"][1])


def test_truncated_file(published, tmp_path):
  data = published["resnet50"][1].read_bytes()
  (tmp_path / "resnet50-0676ba61.pth").write_bytes(data[:len(data) // 2])
  with pytest.raises(errors.WeightsError, match=r"resnet50-0676ba61\.pth: cannot read"):
    convert.convert("resnet50", tmp_path / "resnet50-0676ba61.pth", tmp_path / "x.npz")


def test_missing_file_and_extra_parameter(published, tmp_path):
  with pytest.raises(errors.WeightsError, match=r"nowhere\.pth: .*does not exist"):
    convert.convert("vgg16", tmp_path / "nowhere.pth", tmp_path / "x.npz")
  sd = torch.load(published["vgg16"][1], weights_only=True)
  sd["classifier.7.weight"] = torch.zeros(3)
  torch.save(sd, tmp_path / "vgg16-extra.pth")
  with pytest.raises(errors.WeightsError, match=r"unexpected parameter 'classifier\.7\.weight'"):
    convert.convert("vgg16", tmp_path / "vgg16-extra.pth", tmp_path / "x.npz", CASES["vgg16"][1])


def test_converted_file_checks(published, tmp_path):
  """The loader refuses another network's converted file, a published (unconverted) file and a
  converted file whose arrays were changed."""
  with pytest.raises(errors.WeightsError, match=r"holds converted 'vgg16' weights, expected "
                     "'alexnet'"):
    convert.load(published["vgg16"][2], "alexnet")
  np.savez(tmp_path / "raw.npz", **{k: v.numpy() for k, v in
                                    published["alexnet"][0].state_dict().items()})
  with pytest.raises(errors.WeightsError, match=r"raw\.npz: not a converted emojax backbone"):
    convert.load(tmp_path / "raw.npz")
  with np.load(published["resnet50"][2]) as z:
    arrays = dict(z)
  arrays["fc.kernel"] = arrays["fc.kernel"][:, :10]
  np.savez(tmp_path / "bad.npz", **arrays)
  with pytest.raises(errors.WeightsError, match=r"bad\.npz: parameter 'fc\.kernel' has shape"):
    convert.load(tmp_path / "bad.npz")
  assert json.loads(str(arrays["meta.config"]))["width"] == W


def test_cli(published, tmp_path, capsys):
  src = published["inception_v3"][1]
  assert convert.main(["--network=resnet50", f"--source={src}",
                       f"--out={tmp_path / 'r.npz'}"]) == 2
  err = capsys.readouterr().err
  assert f"error: {src}: parameter" in err and "(torchvision resnet50) is missing" in err
  assert convert.main(["--list"]) == 0
  assert "inception_v3_google-0cc3c7bd.pth" in capsys.readouterr().out


# -- feature extractors ---------------------------------------------------------------------------
def _reference_rows(model, layer, times_per_second, size=(455, 256), box=(16, 116, 224)):
  """The network run directly on the decoded frames: for each second, the frames on screen at
  the given offsets (the last frame with t <= s + offset), scaled to `size` (1280x720 with the
  shorter side 256: 455 x 256), cropped at (top, left, side) and ImageNet-normalised in NumPy."""
  from conftest import MEDIA_FIXTURE  # pylint: disable=import-outside-toplevel
  from emojax.features import decode  # pylint: disable=import-outside-toplevel
  frames = list(decode.iter_video_frames(MEDIA_FIXTURE))
  num_seconds = decode.probe(MEDIA_FIXTURE).num_seconds
  top, left, side = box
  rows = []
  for s in range(num_seconds):
    crops = []
    for offset in times_per_second:
      f = [f for f in frames if f.t <= s + offset][-1]
      crops.append(f.rgb(*size)[top:top + side, left:left + side])
    x = (np.stack(crops) / 255.0 - np.array(common.IMAGENET_MEAN)) / np.array(common.IMAGENET_STD)
    rows.append(flax_out(model, x, layer).mean(axis=0))
  return np.stack(rows)


def test_resnet50_pool_through_the_engine(published, tmp_path):
  """resnet50_pool on the real film excerpt through the cached extraction engine: the manifest
  names the network, layer, both sha256 and the preprocessing; the rows are the Flax network on
  the decoded middle frame of each second; a rerun comes from the cache."""
  from conftest import MEDIA_FIXTURE  # pylint: disable=import-outside-toplevel
  from emojax import weights  # pylint: disable=import-outside-toplevel
  from emojax.datasets import film_builder  # pylint: disable=import-outside-toplevel
  from emojax.features import manifest  # pylint: disable=import-outside-toplevel
  _, src, npz = published["resnet50"]
  spec = {"resnet50_pool": {"weights_path": str(npz), "batch_size": 4}}
  man = manifest.for_spec(spec)
  entry = man["extractors"]["resnet50_pool"]
  assert entry["shape"] == [128] and entry["per"] == "second" and entry["dtype"] == "float32"
  p = entry["params"]
  assert p["network"] == "resnet50" and p["layer"] == "pool"
  assert p["weights_sha256"] == weights.sha256(npz)
  assert p["source_sha256"] == weights.sha256(src)
  assert (p["resize"], p["crop"], p["frames_per_second"], p["interpolation"]) == (
      256, 224, 1, "BILINEAR")
  assert p["mean"] == [0.485, 0.456, 0.406] and p["std"] == [0.229, 0.224, 0.225]

  def run():
    outcomes = film_builder.extract_films([("bbb", str(MEDIA_FIXTURE))], cache_dir=tmp_path,
                                          extractors=spec, manifest=man, num_workers=0)
    return outcomes["bbb"], film_builder.load_cached(outcomes["bbb"]["cache"])[0]

  outcome, streams = run()
  assert outcome["status"] == "ok" and not outcome["cached"]
  rows = streams["resnet50_pool"]
  assert rows.shape == (5, 128) and rows.dtype == np.float32
  want = _reference_rows(convert.load(npz).model, "pool", [0.5])
  np.testing.assert_allclose(rows, want, atol=TOL, rtol=TOL)
  assert np.abs(np.diff(want, axis=0)).max() > 1e-3  # the seconds differ: frames really picked
  outcome2, streams2 = run()
  assert outcome2["cached"]
  np.testing.assert_array_equal(streams2["resnet50_pool"], rows)


def test_per_clip_frames_per_second_and_bfloat16(published):
  """alexnet_fc7 per 2-second clip, 2 frames a second, in bfloat16: each row the mean over the
  clip's frames at s + 0.25 and s + 0.75 (float32 reference, bfloat16 tolerance)."""
  from conftest import MEDIA_FIXTURE  # pylint: disable=import-outside-toplevel
  from emojax.features import extract_film  # pylint: disable=import-outside-toplevel
  npz = published["alexnet"][2]
  feats = extract_film(MEDIA_FIXTURE, {"alexnet_fc7": {
      "weights_path": str(npz), "per": "clip", "clip_seconds": 2, "frames_per_second": 2,
      "dtype": "bfloat16", "batch_size": 8}})
  rows = feats.streams["alexnet_fc7"]
  assert feats.manifest["extractors"]["alexnet_fc7"]["per"] == "clip"
  assert rows.shape == (3, 40)
  per_second = _reference_rows(convert.load(npz).model, "fc7", [0.25, 0.75])
  want = np.stack([per_second[0:2].mean(0), per_second[2:4].mean(0), per_second[4:5].mean(0)])
  scale = np.abs(want).max()
  assert scale > 0.05
  np.testing.assert_allclose(rows, want, atol=0.03 * scale)
  assert np.abs(rows - want).max() > 0  # bfloat16 really ran


def test_extractor_refuses_the_wrong_weights(published):
  from emojax.features import registry  # pylint: disable=import-outside-toplevel
  with pytest.raises(errors.WeightsError, match=r"vgg16\.npz: holds converted 'vgg16' weights, "
                     "but inception_v3_pool takes inception_v3"):
    registry.create("inception_v3_pool", {"weights_path": str(published["vgg16"][2])})
  with pytest.raises(errors.ConfigError, match="made with 00ff"):
    registry.create("resnet50_pool", {"weights_path": str(published["resnet50"][2]),
                                      "weights_sha256": "00ff"})
  with pytest.raises(errors.ConfigError, match="weights_path"):
    registry.create("vgg16_places365_pool5", {})
  inception = registry.get("inception_v3_pool").defaults
  assert (inception["resize"], inception["crop"]) == (342, 299)
  assert (registry.get("vgg16_fc7").defaults["resize"], registry.get("vgg16_fc7").defaults[
      "crop"]) == (256, 224)


def test_caffe_style_preprocessing(published):
  """channels='BGR', pixel_range=255 (networks converted from Caffe): the network sees the
  channels reversed, (x - mean) / std in 0..255 units."""
  from emojax.features import registry  # pylint: disable=import-outside-toplevel
  npz = published["resnet50"][2]
  mean, std = [104.0, 117.0, 123.0], [1.0, 2.0, 4.0]
  ex = registry.create("resnet50_pool", {"weights_path": str(npz), "channels": "BGR",
                                         "pixel_range": 255, "mean": mean, "std": std,
                                         "batch_size": 2, "crop": 64, "resize": 64})
  ex.begin(1)
  crops = np.random.default_rng(4).integers(0, 256, (3, 64, 64, 3), dtype=np.uint8)
  want = flax_out(convert.load(npz).model, (crops[..., ::-1] - np.array(mean)) / np.array(std),
                  "pool")
  np.testing.assert_allclose(ex.features(crops), want, atol=TOL, rtol=TOL)


def test_registry_is_one_format_for_every_network(tmp_path, capsys):
  """One CLI and one converted format for all networks, image and video: every NETWORKS entry is
  a common.Network under its own name, and --list names its published files."""
  for name in convert.NETWORKS:
    net = convert.network(name)
    assert isinstance(net, common.Network) and net.name == name and net.files
  assert convert.main(["--list"]) == 0
  listed = capsys.readouterr().out
  for name in ("resnet50", "bn_inception", "i3d", "flownets"):
    assert f"{name}: {', '.join(convert.network(name).files)}" in listed
  with pytest.raises(errors.ConfigError, match="unknown backbone network 'nope'"):
    convert.convert("nope", tmp_path / "src.txt", tmp_path / "x.npz")
