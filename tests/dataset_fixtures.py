"""Tiny copies of the benchmark downloads, written in code (layouts as in docs/datasets.md).

Each writer returns the values it wrote, so tests can check what the builders read against them.
"""

from __future__ import annotations

import dataclasses
import pathlib

import av
import numpy as np

from emojax.datasets import mediaeval2018 as me18


def write_tiny_film(path: pathlib.Path, seconds: float, *, fps: int = 4, size: int = 32,
                    audio: bool = True, seed: int = 0) -> pathlib.Path:
  """A small MPEG-4 film (grey frames whose level changes, a tone) made with PyAV."""
  rng = np.random.default_rng(seed)
  path.parent.mkdir(parents=True, exist_ok=True)
  with av.open(str(path), "w") as out:
    v = out.add_stream("mpeg4", rate=fps)
    v.width = v.height = size
    v.pix_fmt = "yuv420p"
    if audio:
      a = out.add_stream("aac", rate=16000)
      a.layout = "mono"
    for i in range(int(round(seconds * fps))):
      level = int(rng.integers(0, 255))
      frame = av.VideoFrame.from_ndarray(np.full((size, size, 3), level, np.uint8),
                                         format="rgb24")
      frame.pts = i
      for packet in v.encode(frame):
        out.mux(packet)
    for packet in v.encode():
      out.mux(packet)
    if audio:
      sr = 16000
      t = np.arange(int(seconds * sr)) / sr
      x = (0.3 * np.sin(2 * np.pi * float(rng.uniform(200, 2000)) * t)).astype(np.float32)
      for k in range(0, x.size, 1024):
        frame = av.AudioFrame.from_ndarray(x[None, k:k + 1024], format="flt", layout="mono")
        frame.sample_rate = sr
        frame.pts = k
        for packet in a.encode(frame):
          out.mux(packet)
      for packet in a.encode():
        out.mux(packet)
  return path


# ---------------------------------------------------------------------------------------------
# MediaEval 2018.

# Film number -> (label rows, visual seconds, audio seconds). Audio ends early as the real
# 5 s-window features do; film 46 has far fewer label rows than seconds of features (the real one:
# 100 rows for ~3000 s).
ME18_FILMS: dict[int, tuple[int, int, int]] = {
    0: (14, 14, 12),
    1: (13, 13, 13),
    2: (12, 12, 11),
    6: (24, 24, 23),
    18: (22, 22, 21),
    27: (15, 15, 14),
    46: (8, 30, 29),
    54: (12, 12, 10),
    60: (11, 11, 11),
}
# The planted defects (scaled-down copies of the real ones).
ME18_AUDIO_MISSING = {6: [20]}  # Film 06 lacks audio second 5588.
ME18_VISUAL_MISSING = {18: {"fc6": [5, 6, 7], "jcd": [10]}}  # Film 18's fc6/jcd gaps.
ME18_EMPTY = {27: ("cl", 6)}  # Film 27's empty cl file at second 6.
# Layout variants: film -> (annotation folder, header?, separator).
_PART_FOLDER = {
    "DevSet-Part1": "MEDIAEVAL18-DevSet-Part1-{kind}/{sub}",  # the archive's own X/sub/ layout
    "DevSet-Part2": "MEDIAEVAL18-DevSet-Part2-{kind}/MEDIAEVAL18-DevSet-Part2-{kind}/{sub}",
    "DevSet-Part3": "part3/{sub}",
    "TestSet": "{sub}",  # a single folder right under manual_dir
}
_NO_HEADER_FILMS = (1, 54)
_SPACE_FILMS = (2, 60)


@dataclasses.dataclass
class Me18Film:
  """What was written for one film: values per second (row k = second k+1) before any defect."""
  valence: np.ndarray
  arousal: np.ndarray
  streams: dict[str, np.ndarray]  # name -> (seconds, D) float32, as parsed back from the text.
  label_path: pathlib.Path


def _fmt(values: np.ndarray) -> list[str]:
  return [f"{v:.5g}" for v in values.tolist()]


def _folder(root: pathlib.Path, number: int, kind: str, sub: str) -> pathlib.Path:
  path = root / _PART_FOLDER[me18.download_part(number)].format(kind=kind, sub=sub)
  path.mkdir(parents=True, exist_ok=True)
  return path


def write_arff(path: pathlib.Path, values: np.ndarray, name: str = "'unknown'",
               num_attributes: int = me18.AUDIO_DIM) -> list[str]:
  """An openSMILE emobase2010 ARFF file (with the `.csv` suffix of the real download)."""
  fields = _fmt(values)
  head = ["@relation openSMILE_features", "", "@attribute name string"]
  head += [f"@attribute emobase_{i:04d} numeric" for i in range(num_attributes)]
  head += ["@attribute class {0,1}", "", "@data", ""]
  path.write_text("\n".join(head + [",".join([name] + fields + ["0"])]) + "\n")
  return fields


def write_mediaeval2018(root: pathlib.Path, films: dict[int, tuple[int, int, int]] | None = None,
                        seed: int = 0, defects: bool = True, features: bool = True,
                        media_seconds: dict[int, float] | None = None) -> dict[int, Me18Film]:
  """Writes a MediaEval 2018 download under `root`.

  Labels always; the official visual and audio features when `features`; the films
  `MEDIAEVAL18_XX.mp4` (in `MEDIAEVAL18-<part>-Data/data/`) of the films in `media_seconds`.
  """
  films = ME18_FILMS if films is None else films
  rng = np.random.default_rng(seed)
  out = {}
  for number, (n_labels, n_visual, n_audio) in films.items():
    fid = me18.film_id(number)
    # Labels.
    valence = np.round(rng.uniform(-1, 1, n_labels), 4)
    arousal = np.round(rng.uniform(-1, 1, n_labels), 4)
    sep = " " if number in _SPACE_FILMS else "\t"
    lines = [] if number in _NO_HEADER_FILMS else [sep.join(["Time", "Valence", "Arousal"])]
    lines += [sep.join([str(t), f"{v:.4f}", f"{a:.4f}"])
              for t, v, a in zip(range(n_labels), valence, arousal)]
    label_dir = _folder(root, number, "Valence_Arousal-annotations", "annotations")
    label_path = label_dir / f"{fid}_Valence-Arousal.txt"
    label_path.write_text("\n".join(lines) + "\n")
    streams = {}
    if media_seconds and number in media_seconds:
      write_tiny_film(_folder(root, number, "Data", "data") / f"{fid}.mp4",
                      media_seconds[number], seed=seed + number)
    if not features:
      out[number] = Me18Film(valence=valence, arousal=arousal, streams={},
                             label_path=label_path)
      continue
    # Visual descriptors: one folder per descriptor, one file per second.
    vis_root = _folder(root, number, "Visual_features", "visual_features") / fid
    for feat, dim in me18.VISUAL_DIMS.items():
      (vis_root / feat).mkdir(parents=True, exist_ok=True)
      x = rng.random((n_visual, dim)).astype(np.float32)
      if feat in ("cl", "fcth", "jcd"):  # Some descriptors are integer-valued.
        x = np.floor(x * 8)
      rows = np.zeros_like(x)
      missing = ME18_VISUAL_MISSING.get(number, {}).get(feat, []) if defects else []
      for s in range(1, n_visual + 1):
        if s in missing:
          continue
        path = vis_root / feat / f"{fid}-{s:05d}_{feat}.txt"
        if defects and ME18_EMPTY.get(number) == (feat, s):
          path.write_text("")
          continue
        fields = _fmt(x[s - 1])
        path.write_text(",".join(fields) + ("\n" if s % 2 else ""))
        rows[s - 1] = np.asarray(fields, np.float32)
      streams[feat] = rows
    # Audio: ARFF text in .csv files.
    aud_root = _folder(root, number, "Audio_features", "audio_features") / fid
    aud_root.mkdir(parents=True, exist_ok=True)
    x = rng.normal(size=(n_audio, me18.AUDIO_DIM)).astype(np.float32)
    rows = np.zeros_like(x)
    for s in range(1, n_audio + 1):
      if defects and s in ME18_AUDIO_MISSING.get(number, []):
        continue
      fields = write_arff(aud_root / f"{fid}_{s:05d}.csv", x[s - 1])
      rows[s - 1] = np.asarray(fields, np.float32)
    streams[me18.AUDIO_STREAM] = rows
    out[number] = Me18Film(valence=valence, arousal=arousal, streams=streams,
                           label_path=label_path)
  return out


# ---------------------------------------------------------------------------------------------
# COGNIMUSE.

# Film code -> (annotation rows at 25 Hz, experienced files as (subject, pass, rows)).
COGNIMUSE_FILMS: dict[str, tuple[int, tuple[tuple[int, int, int], ...]]] = {
    "BMI": (300, ((1, 1, 300), (2, 1, 300), (3, 1, 302))),  # 12 s; one file 2 rows longer
    "CHI": (275, ((1, 1, 275), (2, 2, 275))),  # 11 s
    "GLA": (280, ((1, 1, 280),)),  # 11.2 s: a 1.2 s tail outside 5 s segments
    "SIL": (260, ()),  # 10.4 s, no experienced annotation
}
# Layout variants: the database's own <CODE>/emotion/, a doubled top folder, a CODE_suffix
# folder, and a flat CODE folder.
_COGNIMUSE_DIRS = {
    "BMI": "COGNIMUSEdatabase/BMI/emotion",
    "CHI": "COGNIMUSEdatabase/COGNIMUSEdatabase/CHI",
    "GLA": "annotations/GLA_emotion",
    "SIL": "SIL",
}


@dataclasses.dataclass
class CognimuseFilm:
  """What was written for one film: 25 Hz rows (time, valence, arousal) per file."""
  intended: np.ndarray  # (N, 3)
  experienced: list[np.ndarray]  # [(N_i, 3)]
  folder: pathlib.Path


def _cognimuse_rows(rng: np.random.Generator, n: int) -> np.ndarray:
  t = np.round(np.arange(n) * 0.04, 2)
  walk = np.clip(np.cumsum(rng.normal(0, 0.05, (n, 2)), axis=0), -1, 1)
  return np.column_stack([t, np.round(walk, 4)])


def _write_dat(path: pathlib.Path, rows: np.ndarray, header: bool = False) -> None:
  lines = ["time valence arousal"] if header else []
  lines += [f"{t:.2f} {v:.4f} {a:.4f}" for t, v, a in rows]
  path.write_text("\n".join(lines) + "\n")


def write_cognimuse(root: pathlib.Path, films=None, seed: int = 0,
                    media_seconds: dict[str, float] | None = None) -> dict[str, CognimuseFilm]:
  """Writes COGNIMUSE annotations (and films `films/<CODE>.mp4` or `<folder>/video.mp4`)."""
  films = COGNIMUSE_FILMS if films is None else films
  rng = np.random.default_rng(seed)
  out = {}
  for code, (n, subjects) in films.items():
    folder = root / _COGNIMUSE_DIRS.get(code, code)
    folder.mkdir(parents=True, exist_ok=True)
    intended = _cognimuse_rows(rng, n)
    _write_dat(folder / "intended_1.dat", intended, header=(code == "CHI"))
    experienced = []
    for s, i, rows in subjects:
      x = _cognimuse_rows(rng, rows)
      name = f"subj{s}_{i}" + ("" if (s, i) == (2, 2) else ".dat")
      _write_dat(folder / name, x)
      experienced.append(x)
    if media_seconds and code in media_seconds:
      target = (folder / "video.mp4") if code == "CHI" else (root / "films" / f"{code}.mp4")
      write_tiny_film(target, media_seconds[code], seed=seed + len(out))
    out[code] = CognimuseFilm(intended=intended, experienced=experienced, folder=folder)
  return out
