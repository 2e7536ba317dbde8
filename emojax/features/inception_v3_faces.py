"""`inception_v3_faces`: Inception-v3's 2048-d global pool on the two largest faces of each sampled
frame (seed 001's "Inception-Face", 001 Sec. 2.1: "we focused on the two largest faces in each
frame and used an Inception based architecture trained on faces"), from converted weights.

Per sampled frame (the `frames_per_second` frames on screen at s + (j + 0.5) / k, as every image
backbone extractor samples; k = 1 by default: "extracted at one frame per second"):

1. faces are found by emojax's face detector (`face_expression.FaceDetector`: OpenCV's
   frontal-face Haar cascade with fer's settings `scale_factor`, `min_neighbors`,
   `min_face_size`) on the gray frame scaled by FFmpeg's swscale so that its longer side is at most
   `max_side` (0 = native size; `min_face_size` is in pixels of that scaled frame);
2. the `max_faces` (2) largest boxes by area, largest first, are mapped back to the native frame;
   each becomes a square centred on the box, of side max(w, h) x (1 + 2 `margin`) (a margin of 10%
   of the side on every side by default), cut from the native RGB frame (parts outside the frame
   are black), resized to `resize` x `resize` (OpenCV, INTER_AREA when shrinking, INTER_LINEAR
   when growing) and centre-cropped to `crop` x `crop` (299 x 299 by default: Inception-v3's
   input), then normalised and run through the network as `inception_v3_pool` runs frames
   (ImageNet mean / std, `batch_size` crops per jitted call, `dtype` float32 or bfloat16; a
   batch runs when `batch_size` faces wait, or after 60 s of film: rows come out up to a minute
   late, and what is held stays bounded);
3. the row of a second, (max_faces x 2048 + max_faces,) float32, is
   [face slot 0's features (2048), face slot 1's features (2048), slot 0's share, slot 1's share]:
   slot i's features are the mean over the second's samples in which an (i + 1)-th face was
   found, zeros when none was; slot i's share is the fraction of the second's samples with that
   face (0 = no face: the model can tell a missing face from a dark one).

What the paper does not say and is emojax's choice: the face network (the paper's "Inception based
architecture trained on faces" is not named or published: give Inception-v3 weights, ImageNet's
`inception_v3_google` or a face-trained network converted to the same layout), the detector (the
paper names none), the margin and resizing of the crops, the slot layout and the zeros / shares for
missing faces. Per clip (`per='clip'`) rows are the mean of the clip's per-second rows.

Needs OpenCV (`opencv-python-headless`, part of emojax[face]); the fer weights are not used.
"""

from __future__ import annotations

import numpy as np

from emojax import errors
from emojax.features import backbone_frames
from emojax.features import backbone_weights
from emojax.features import face_expression
from emojax.features import registry

# Seconds whose rows may wait for a full batch of faces: few faces do not run a padded batch
# every few seconds, and what is held stays bounded (< batch_size crops + this many seconds).
MAX_PENDING_SECONDS = 60
FACE_DEFAULTS = {"max_faces": 2, "margin": 0.1, "max_side": 640, "scale_factor": 1.1,
                 "min_neighbors": 5, "min_face_size": 50}


def square_crop(rgb_HxWx3: np.ndarray, box_xywh: tuple[int, int, int, int], margin: float
                ) -> np.ndarray:
  """The square around a face box (side max(w, h) x (1 + 2 margin), same centre), black outside
  the frame: uint8 (side, side, 3)."""
  x, y, w, h = box_xywh
  side = max(1, int(round(max(w, h) * (1 + 2 * margin))))
  cx, cy = x + w / 2, y + h / 2
  x0, y0 = int(round(cx - side / 2)), int(round(cy - side / 2))
  out = np.zeros((side, side, 3), np.uint8)
  height, width = rgb_HxWx3.shape[:2]
  sx0, sy0 = max(x0, 0), max(y0, 0)
  sx1, sy1 = min(x0 + side, width), min(y0 + side, height)
  if sx1 > sx0 and sy1 > sy0:
    out[sy0 - y0:sy1 - y0, sx0 - x0:sx1 - x0] = rgb_HxWx3[sy0:sy1, sx0:sx1]
  return out


def face_input(square_SxSx3: np.ndarray, resize: int, crop: int) -> np.ndarray:
  """A face square scaled to resize x resize, centre-cropped to crop x crop (uint8)."""
  cv2 = face_expression._require("cv2")  # pylint: disable=protected-access
  side = square_SxSx3.shape[0]
  interpolation = cv2.INTER_AREA if side > resize else cv2.INTER_LINEAR
  scaled = cv2.resize(square_SxSx3, (resize, resize), interpolation=interpolation)
  top = (resize - crop) // 2
  return scaled[top:top + crop, top:top + crop]


class InceptionV3Faces(backbone_frames.BackboneExtractor):
  """Per second: [face 1 pool (2048), face 2 pool (2048), face 1 share, face 2 share]."""

  name = "inception_v3_faces"
  networks = ("inception_v3",)
  layer = "pool"
  resize = 299
  crop = 299

  def __init__(self, **params):
    super().__init__(**params)
    p = self.params
    what = f"extractor {self.name!r}"
    backbone_weights.check_params(what, p, ("max_faces", "min_neighbors", "min_face_size"), 1)
    backbone_weights.check_params(what, p, ("max_side",), 0)
    if not isinstance(p["margin"], (int, float)) or p["margin"] < 0:
      raise errors.ConfigError(f"{what}: margin must be a number >= 0, got {p['margin']!r}")
    if not isinstance(p["scale_factor"], (int, float)) or p["scale_factor"] <= 1.0:
      raise errors.ConfigError(f"{what}: scale_factor must be a number > 1, got "
                               f"{p['scale_factor']!r}")
    self._face_shape = self._shape  # the network's output per face: (2048,)
    n = p["max_faces"]
    self._shape = (n * self._face_shape[0] + n,)
    self.detector = face_expression.FaceDetector(face_expression.DetectorParams(
        float(p["scale_factor"]), int(p["min_neighbors"]), int(p["min_face_size"])))

  # -- faces of one sampled frame -----------------------------------------------------------------
  def face_inputs(self, frame) -> list[np.ndarray]:
    """The network inputs (uint8 crop x crop x 3) of the frame's largest faces, largest first."""
    cv2 = face_expression._require("cv2")  # pylint: disable=protected-access
    p = self.params
    width, height = frame.av_frame.width, frame.av_frame.height
    dw, dh = width, height
    if p["max_side"] and max(width, height) > p["max_side"]:
      scale = p["max_side"] / max(width, height)
      dw, dh = max(2, round(width * scale)), max(2, round(height * scale))
    gray = cv2.cvtColor(frame.rgb(dw, dh), cv2.COLOR_RGB2GRAY)
    boxes = self.detector.faces(gray)[:p["max_faces"]]
    if not boxes:
      return []
    rgb = frame.rgb(width, height)
    sx, sy = width / dw, height / dh
    out = []
    for x, y, w, h in boxes:
      native = (x * sx, y * sy, w * sx, h * sy)
      out.append(face_input(square_crop(rgb, native, p["margin"]), p["resize"], p["crop"]))
    return out

  # -- hooks --------------------------------------------------------------------------------------
  def begin(self, num_seconds: int) -> None:
    super().begin(num_seconds)
    self.samples: list[list[np.ndarray]] = []  # per sampled frame: its faces' inputs

  def frame(self, f) -> None:
    for _, picked in self.sampler.push(f):
      self.samples.append(self.face_inputs(picked))

  def _run_pending(self) -> list[np.ndarray]:
    k = self.params["frames_per_second"]
    n_samples = self.pending_seconds * k
    if n_samples == 0:
      return []
    samples, self.samples = self.samples[:n_samples], self.samples[n_samples:]
    self.pending_seconds = 0
    crops = [c for faces in samples for c in faces]
    feats = (self.features(np.stack(crops)) if crops
             else np.zeros((0, *self._face_shape), np.float32))
    n, d = self.params["max_faces"], self._face_shape[0]
    rows, used = [], 0
    for s in range(n_samples // k):
      total = np.zeros((n, d), np.float64)
      count = np.zeros(n, np.int64)
      for faces in samples[s * k:(s + 1) * k]:
        for slot in range(len(faces)):
          total[slot] += feats[used + slot]
          count[slot] += 1
        used += len(faces)
      row = np.zeros(self._shape, np.float32)
      row[:n * d] = (total / np.maximum(count, 1)[:, None]).reshape(-1)
      row[n * d:] = count / k
      rows.append(row)
    return rows

  def end_second(self, s: int) -> list[np.ndarray]:
    last = s == self.num_seconds - 1
    if last:
      for _, picked in self.sampler.flush():
        self.samples.append(self.face_inputs(picked))
    self.pending_seconds += 1
    k = self.params["frames_per_second"]
    pending_faces = sum(len(faces) for faces in self.samples[:self.pending_seconds * k])
    if (last or pending_faces >= self.params["batch_size"]
        or self.pending_seconds >= MAX_PENDING_SECONDS):
      return self._emit(self._run_pending(), last)
    return []


InceptionV3Faces.defaults = {**InceptionV3Faces.defaults, **FACE_DEFAULTS}
registry.register(InceptionV3Faces)
