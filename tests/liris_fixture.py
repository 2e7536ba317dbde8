"""Writes tiny LIRIS-ACCEDE downloads (the real layouts and quirks, a handful of clips) for tests.

The layout follows docs/datasets/liris_accede.md and the LIRIS-ACCEDE readme: description XMLs with
one `<media>` per clip, tab-separated tables with headers (ranking, sets, affect, violence), the
header-less MediaEval mapping and 2016 Global files, `continuous-annotations/<Movie>_Valence.txt`
with one header line. Variants: doubled folders, no headers, spaces instead of tabs, names with or
without `.mp4`. Labels are written with 6 decimals and returned so tests compare against them.
"""

from __future__ import annotations

import dataclasses
import pathlib

import av
import numpy as np


@dataclasses.dataclass(frozen=True)
class Clip:
  """One excerpt and every label any config gives it."""
  name: str  # without .mp4
  index: int
  film: str  # source film without .mp4
  set: int  # ACCEDEsets.txt: 0 test, 1 learning, 2 validation; -1 for MEDIAEVAL clips
  valence: float
  arousal: float
  valence_variance: float
  arousal_variance: float
  valence_rank: int
  arousal_rank: int
  valence_class: int  # -1 / 0 / 1
  arousal_class: int
  violence: int
  mediaeval_dev: bool  # in shots-devset-nl.txt (else shots-testset-nl.txt)


def _accede_clips() -> list[Clip]:
  films = ["20_Mississippi", "20_Mississippi", "Big_Buck_Bunny", "Big_Buck_Bunny",
           "Sintel", "Sintel", "The_Dabbler", "The_Dabbler"]
  sets = [1, 1, 1, 1, 2, 2, 0, 0]
  clips = []
  for i, (film, set_) in enumerate(zip(films, sets)):
    clips.append(Clip(
        name=f"ACCEDE{i:05d}", index=i, film=film, set=set_,
        valence=round(1.33 + 0.291317 * i, 6), arousal=round(4.54 - 0.402211 * i, 6),
        valence_variance=round(0.101 + 0.0123 * i, 6), arousal_variance=round(0.2 + 0.031 * i, 6),
        valence_rank=(3 * i + 1) % 8, arousal_rank=(5 * i + 2) % 8,
        valence_class=(i % 3) - 1, arousal_class=((i + 1) % 3) - 1, violence=int(i in (2, 7)),
        mediaeval_dev=set_ != 0))
  return clips


ACCEDE = _accede_clips()
MEDIAEVAL = [
    Clip(name=f"MEDIAEVAL{i:05d}", index=i, film="Elephant_s_Dream", set=-1, valence=0.0,
         arousal=0.0, valence_variance=0.0, arousal_variance=0.0, valence_rank=0, arousal_rank=0,
         valence_class=1 - i, arousal_class=i - 1, violence=int(i == 1), mediaeval_dev=False)
    for i in range(3)
]
# MediaEval 2016 Global test clips: (name, valence, arousal) on the 1-5 scale.
GLOBAL16 = [("MEDIAEVAL16_GL_00000", 2.718281, 3.141592), ("MEDIAEVAL16_GL_00001", 1.414213,
                                                           1.732050)]


@dataclasses.dataclass
class Layout:
  """How the download is unpacked and written."""
  doubled: bool = False  # LIRIS-ACCEDE-annotations/LIRIS-ACCEDE-annotations/annotations/
  header: bool = True  # the header rows the real tables have (False: none anywhere)
  sep: str = "\t"  # column separator
  mp4: bool | None = None  # names with .mp4: None = as the real files, True/False = everywhere
  videos: bool = False  # write the clip .mp4 files
  video_seconds: float = 3.0


def _dir(root: pathlib.Path, archive: str, inner: str, layout: Layout) -> pathlib.Path:
  path = root / archive
  if layout.doubled:
    path = path / archive
  return path / inner if inner else path


def _name(clip: str, real_has_mp4: bool, layout: Layout) -> str:
  has = real_has_mp4 if layout.mp4 is None else layout.mp4
  return f"{clip}.mp4" if has else clip


def _table(path: pathlib.Path, header: list[str] | None, rows: list[list[object]],
           layout: Layout) -> None:
  lines = []
  if header and layout.header:
    lines.append(layout.sep.join(header))
  lines += [layout.sep.join(str(x) for x in row) for row in rows]
  path.parent.mkdir(parents=True, exist_ok=True)
  path.write_text("\n".join(lines) + "\n")


def description_xml(clips: list[Clip]) -> str:
  parts = ['<?xml version="1.0" encoding="UTF-8"?>', "<ACCEDEdescription>"]
  for c in clips:
    parts += ["  <media>", f"    <id>{c.index}</id>", f"    <name>{c.name}.mp4</name>",
              f"    <license>{c.film} shared under CC BY 3.0 & friends at http://vimeo.com/1"
              "</license>",
              f"    <movie>{c.film}.mp4</movie>", f"    <start>{100 * c.index}</start>",
              f"    <end>{100 * c.index + 250}</end>", "  </media>"]
  parts.append("</ACCEDEdescription>")
  return "\n".join(parts) + "\n"


def write_video(path: pathlib.Path, seconds: float, *, fps: int = 10, size: int = 32,
                audio: bool = True, seed: int = 0) -> pathlib.Path:
  """A tiny H.264 (+ AAC 16 kHz mono) file whose brightness and tone depend on `seed`."""
  path.parent.mkdir(parents=True, exist_ok=True)
  with av.open(str(path), "w") as out:
    v = out.add_stream("libx264" if "libx264" in av.codecs_available else "mpeg4", rate=fps)
    v.width = v.height = size
    v.pix_fmt = "yuv420p"
    a = None
    if audio:
      a = out.add_stream("aac", rate=16000)
      a.layout = "mono"
    for i in range(int(round(seconds * fps))):
      img = np.full((size, size, 3), (i * 7 + seed * 40) % 256, np.uint8)
      img[: size // 2, :, seed % 3] = 200
      for p in v.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
        out.mux(p)
    for p in v.encode():
      out.mux(p)
    if a is not None:
      n = int(seconds * 16000)
      x = (0.2 * np.sin(np.arange(n) * 2 * np.pi * (220 + 110 * seed) / 16000)).astype(np.float32)
      for s in range(0, n, 1024):
        frame = av.AudioFrame.from_ndarray(x[None, s:s + 1024], format="flt", layout="mono")
        frame.sample_rate = 16000
        for p in a.encode(frame):
          out.mux(p)
      for p in a.encode():
        out.mux(p)
  return path


def write_tree(root: pathlib.Path, layout: Layout | None = None) -> pathlib.Path:
  """Writes a LIRIS-ACCEDE + MediaEval 2015 + MediaEval 2016 Global download under `root`."""
  layout = layout or Layout()
  root.mkdir(parents=True, exist_ok=True)
  data = _dir(root, "LIRIS-ACCEDE-data", "", layout)
  data.mkdir(parents=True, exist_ok=True)
  (data / "ACCEDEdescription.xml").write_text(description_xml(ACCEDE))
  ann = _dir(root, "LIRIS-ACCEDE-annotations", "annotations", layout)
  _table(ann / "ACCEDEranking.txt",
         ["id", "name", "valenceRank", "arousalRank", "valenceValue", "arousalValue",
          "valenceVariance", "arousalVariance"],
         [[c.index, _name(c.name, True, layout), c.valence_rank, c.arousal_rank, c.valence,
           c.arousal, c.valence_variance, c.arousal_variance] for c in ACCEDE], layout)
  _table(ann / "ACCEDEsets.txt", ["id", "name", "set"],
         [[c.index, _name(c.name, True, layout), c.set] for c in ACCEDE], layout)

  me_data = _dir(root, "MEDIAEVAL-data", "", layout)
  me_data.mkdir(parents=True, exist_ok=True)
  (me_data / "MEDIAEVALdescription.xml").write_text(description_xml(MEDIAEVAL))
  me_ann = _dir(root, "MEDIAEVAL-annotations", "annotations", layout)
  for prefix, clips in (("ACCEDE", ACCEDE), ("MEDIAEVAL", MEDIAEVAL)):
    _table(me_ann / f"{prefix}affect.txt", ["id", "name", "valenceClass", "arousalClass"],
           [[c.index, _name(c.name, False, layout), c.valence_class, c.arousal_class]
            for c in clips], layout)
    _table(me_ann / f"{prefix}violence.txt", ["id", "name", "violence"],
           [[c.index, _name(c.name, False, layout), c.violence] for c in clips], layout)
  mapping = _dir(root, "MEDIAEVAL-mapping", "", layout)
  every = ACCEDE + MEDIAEVAL
  _table(mapping / "shots-devset-nl.txt", None,
         [[i, _name(c.name, True, layout)] for i, c in enumerate(c for c in every
                                                                  if c.mediaeval_dev)], layout)
  _table(mapping / "shots-testset-nl.txt", None,
         [[i, _name(c.name, True, layout)] for i, c in enumerate(c for c in every
                                                                  if not c.mediaeval_dev)], layout)
  me16 = _dir(root, "MEDIAEVAL16-Global", "", layout)
  _table(me16 / "MEDIAEVAL16-Global_prediction.txt", None,
         [[_name(n, True, layout), v, a] for n, v, a in GLOBAL16], layout)

  if layout.videos:
    for i, c in enumerate(every):
      folder = data if c.set >= 0 else me_data
      write_video(folder / "data" / f"{c.name}.mp4", layout.video_seconds, seed=i)
    for i, (n, _, _) in enumerate(GLOBAL16):
      write_video(me16 / "data" / f"{n}.mp4", layout.video_seconds, seed=20 + i)
  return root


# ---------------------------------------------------------------------------------------------
# LIRIS-ACCEDE continuous (30 films in the real data; three here).


def continuous_labels(film_index: int, seconds: int) -> dict[str, np.ndarray]:
  """Deterministic per-second labels in [-1, 1] (6 decimals) and stds in [0, 0.5]."""
  t = np.arange(seconds)
  return {
      "valence": np.round(0.8 * np.sin(0.7 * t + film_index), 6),
      "arousal": np.round(0.6 * np.cos(0.5 * t - film_index), 6),
      "valence_std": np.round(0.1 + 0.02 * ((t + film_index) % 5), 6),
      "arousal_std": np.round(0.15 + 0.01 * ((2 * t + film_index) % 7), 6),
  }


CONTINUOUS_FILMS = {"After_The_Rain": 5, "Big_Buck_Bunny": 4, "MEDIAEVAL16_FM_00": 3}


def write_continuous_tree(root: pathlib.Path, layout: Layout | None = None, *,
                          label_seconds: dict[str, tuple[int, int]] | None = None,
                          films: dict[str, int] | None = None) -> dict[str, dict[str, np.ndarray]]:
  """Writes continuous-annotations/ (+ continuous-movies/ when layout.videos).

  Args:
    label_seconds: film -> (valence rows, arousal rows); default: the film's seconds for both.
    films: film -> video seconds (default CONTINUOUS_FILMS).

  Returns:
    film -> the labels written (full length, before any truncation).
  """
  layout = layout or Layout()
  films = films or CONTINUOUS_FILMS
  ann = _dir(root, "LIRIS-ACCEDE-continuous-annotations", "continuous-annotations", layout)
  movies = _dir(root, "LIRIS-ACCEDE-continuous-movies", "continuous-movies", layout)
  (ann / "raw").mkdir(parents=True, exist_ok=True)
  written = {}
  for k, (film, seconds) in enumerate(films.items()):
    n_v, n_a = (label_seconds or {}).get(film, (seconds, seconds))
    labels = continuous_labels(k, max(n_v, n_a))
    for dim, n in (("valence", n_v), ("arousal", n_a)):
      rows = [[s, f"{labels[dim][s]:.6f}", f"{labels[dim + '_std'][s]:.6f}"] for s in range(n)]
      _table(ann / f"{film}_{dim.capitalize()}.txt", ["Time", "Mean", "Std"], rows, layout)
      # Per-annotator raw files sit in raw/ and must be ignored.
      (ann / "raw" / f"{film}_{dim.capitalize()}_annotator1.txt").write_text("0\tnot a table\n")
    written[film] = {"valence": labels["valence"][:n_v], "arousal": labels["arousal"][:n_a],
                     "valence_std": labels["valence_std"][:n_v],
                     "arousal_std": labels["arousal_std"][:n_a]}
    if layout.videos:
      write_video(movies / f"{film}.mp4", seconds, seed=k)
  return written
