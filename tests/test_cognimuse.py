"""cognimuse builder: fixture annotations (and tiny films) built with TFDS and read back."""

import numpy as np
import pytest
import tensorflow_datasets as tfds

import dataset_fixtures as fx
from emojax.datasets import cognimuse
from emojax.errors import DataError


def _build(manual_dir, data_dir, config):
  builder = cognimuse.Cognimuse(config=config, data_dir=str(data_dir),
                                file_format="array_record")
  builder.download_and_prepare(
      download_config=tfds.download.DownloadConfig(manual_dir=str(manual_dir)))
  return builder


def _read(builder, split):
  src = builder.as_data_source(split=split)
  return {ex["film_id"].decode(): ex for ex in (src[i] for i in range(len(src)))}


def _segment_oracle(rows, seconds):
  """Brute force: mean of the rows i with k L <= 0.04 i < (k+1) L, whole segments only."""
  n = rows.shape[0]
  num = int(n * 4 // (seconds * 100))  # floor(n * 0.04 / L) in integers
  out = np.zeros((num, 2))
  for k in range(num):
    members = [i for i in range(n) if k * seconds * 100 <= 4 * i < (k + 1) * seconds * 100]
    out[k] = rows[members, 1:].mean(axis=0)
  return out


@pytest.fixture(scope="module")
def manual(tmp_path_factory):
  root = tmp_path_factory.mktemp("cognimuse")
  written = fx.write_cognimuse(root / "manual", media_seconds={"BMI": 12, "CHI": 11, "GLA": 11,
                                                               "SIL": 10.5})
  return root, written


@pytest.mark.parametrize("seconds", [5, 1])
def test_intended_labels_only(manual, seconds):
  root, written = manual
  builder = _build(root / "manual", root / f"d_int{seconds}", f"intended_{seconds}s_labels")
  assert sorted(builder.info.splits) == ["film_BMI", "film_CHI", "film_GLA", "film_SIL"]
  films = _read(builder, cognimuse.all_films_split(["BMI", "CHI", "GLA", "SIL"]))
  assert sorted(films) == ["BMI", "CHI", "GLA", "SIL"]
  for code, ex in films.items():
    want = _segment_oracle(written[code].intended, seconds)
    np.testing.assert_allclose(ex["valence"], want[:, 0], atol=1e-6)
    np.testing.assert_allclose(ex["arousal"], want[:, 1], atol=1e-6)
    assert "valence_std" not in ex
  assert films["GLA"]["valence"].shape == ((2,) if seconds == 5 else (11,))
  md = builder.info.metadata
  assert md["segment_seconds"] == seconds
  assert md["films"]["BMI"]["annotation_s"] == 12.0
  tails = [p["message"] for p in md["problems"] if "do not fill" in p["message"]]
  assert any(m.startswith("GLA: the last 1.20 s") for m in tails) == (seconds == 5)
  # Films absent from the download are reported, not fatal.
  absent = [p for p in md["problems"] if p["severity"] == "warning"]
  assert len(absent) == 8 and all("no intended annotation found" in p["message"] for p in absent)


def test_experienced_mean_and_std_over_annotators(manual):
  root, written = manual
  builder = _build(root / "manual", root / "d_exp", "experienced_5s_labels")
  assert sorted(builder.info.splits) == ["film_BMI", "film_CHI", "film_GLA"]
  films = _read(builder, "film_BMI+film_CHI+film_GLA")
  for code, ex in films.items():
    n = min(r.shape[0] for r in written[code].experienced)
    per = np.stack([_segment_oracle(r[:n], 5) for r in written[code].experienced])
    np.testing.assert_allclose(ex["valence"], per[..., 0].mean(0), atol=1e-6)
    np.testing.assert_allclose(ex["arousal"], per[..., 1].mean(0), atol=1e-6)
    np.testing.assert_allclose(ex["valence_std"], per[..., 0].std(0), atol=1e-6)
    np.testing.assert_allclose(ex["arousal_std"], per[..., 1].std(0), atol=1e-6)
  assert films["GLA"]["valence_std"].tolist() == [0.0, 0.0]  # one annotator
  problems = builder.info.metadata["problems"]
  cut = [p for p in problems if "BMI: the 3 experienced annotation files" in p["message"]]
  assert len(cut) == 1 and "subj3_1.dat 2" in cut[0]["message"] and cut[0]["severity"] == "info"
  assert any("film SIL: no experienced annotation" in p["message"] for p in problems)


def test_fold_splits():
  train, test = cognimuse.fold_splits("BMI")
  assert test == "film_BMI"
  assert train.split("+") == [f"film_{c}" for c in cognimuse.FILMS if c != "BMI"]
  assert len(train.split("+")) == 11
  with pytest.raises(DataError, match="unknown film code 'XYZ'"):
    cognimuse.fold_splits("XYZ")


def test_extracted_features_per_segment(manual):
  from emojax.features import extract_film
  root, written = manual
  config = cognimuse.CognimuseConfig(name="intended_5s_test", stream="intended",
                                     segment_seconds=5, extractors=("vggish_logmel",))
  builder = _build(root / "manual", root / "d_feat", config)
  assert builder.info.features["vggish_logmel"].shape == (None, 96, 64)
  train, test = cognimuse.fold_splits("CHI", ["BMI", "CHI", "GLA", "SIL"])
  films = {**_read(builder, train), **_read(builder, test)}
  assert sorted(_read(builder, test)) == ["CHI"]
  for code, ex in films.items():
    film = next((root / "manual").rglob(f"{code}.mp4"), None) or (
        written[code].folder / "video.mp4")
    per_second = extract_film(film, ["vggish_logmel"]).streams["vggish_logmel"]
    s = ex["valence"].shape[0]
    assert ex["vggish_logmel"].shape == (s, 96, 64)
    for k in range(s):
      np.testing.assert_allclose(ex["vggish_logmel"][k], per_second[5 * k:5 * k + 5].mean(0),
                                 rtol=1e-5, atol=1e-5)
    labels = _segment_oracle(written[code].intended, 5)
    np.testing.assert_allclose(ex["valence"], labels[:s, 0], atol=1e-6)
  assert films["SIL"]["valence"].shape == (2,)  # 10.4 s of annotation, a 10.5 s film
  assert builder.info.metadata["films"]["BMI"]["film_s"] == pytest.approx(12.0, abs=0.1)


def test_film_duration_checked(tmp_path):
  fx.write_cognimuse(tmp_path / "m", films={"BMI": (300, ())}, media_seconds={"BMI": 8})
  config = cognimuse.CognimuseConfig(name="t", extractors=("vggish_logmel",))
  with pytest.raises(DataError, match=r"BMI\.mp4: BMI: the film lasts 8\.\d+ s but its annotation "
                     r"covers 12\.00 s.*ffmpeg -sseof -12\.00 -i"):
    _build(tmp_path / "m", tmp_path / "d", config)


def test_films_absent_points_to_labels_config(tmp_path):
  fx.write_cognimuse(tmp_path / "m", films={"BMI": (300, ())})
  config = cognimuse.CognimuseConfig(name="t", extractors=("vggish_logmel",))
  with pytest.raises(DataError, match=r"no film file for BMI.*intended_5s_labels"):
    _build(tmp_path / "m", tmp_path / "d", config)


def test_malformed_annotations(tmp_path):
  p = tmp_path / "intended_1.dat"
  p.write_text("0.00 0.1 0.2\n0.04 0.1\n")
  with pytest.raises(DataError, match=r"intended_1\.dat:2: expected 3 fields, found 2"):
    cognimuse.read_annotation(p)
  p.write_text("0.00 0.1 0.2\n0.04 0.1 -1.2\n")
  with pytest.raises(DataError, match=r"intended_1\.dat:2: arousal -1\.2 is not in"):
    cognimuse.read_annotation(p)
  p.write_text("0 0.1 0.2\n1 0.1 0.2\n2 0.1 0.2\n")
  with pytest.raises(DataError, match=r"intended_1\.dat:2: rows are 1 s apart, not 0\.04 s"):
    cognimuse.read_annotation(p)
  p.write_text("0.00 0.1 0.2\n0.08 0.1 0.2\n0.04 0.1 0.2\n")
  with pytest.raises(DataError, match=r"intended_1\.dat:3: the time column does not increase"):
    cognimuse.read_annotation(p)
  p.write_text("time valence arousal\n0.00 0.1 0.2\n0.04 0.3 x\n")
  with pytest.raises(DataError, match=r"intended_1\.dat:3: column 3 is 'x', not a number"):
    cognimuse.read_annotation(p)


def test_duplicate_copies_rejected(tmp_path):
  fx.write_cognimuse(tmp_path / "m", films={"BMI": (300, ())})
  fx.write_cognimuse(tmp_path / "m" / "again", films={"BMI": (300, ())})
  with pytest.raises(DataError, match=r"2 copies of BMI/intended_1\.dat"):
    _build(tmp_path / "m", tmp_path / "d", "intended_5s_labels")
