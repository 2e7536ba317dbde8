"""`synthetic_films` and `films` end to end: rendered mp4 -> real extractors -> TFDS -> read back."""

import numpy as np
import pytest

from emojax.datasets import films
from emojax.datasets import synthetic_films
from emojax.datasets import synthetic_films_render as render
from emojax.errors import DataError
from emojax.features import manifest as manifest_lib

EXTRACTORS = ("vggish_logmel", "visual_stats")  # the fast ones (no numba warm-up)
SMALL = dict(num_films=4, duration_s=8, fps=8, width=96, height=72, sample_rate=16000,
             num_validation=1, num_test=1, extractors=EXTRACTORS)


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory):
  data_dir = tmp_path_factory.mktemp("data")
  builder = synthetic_films.SyntheticFilms(data_dir=str(data_dir), include_bad_films=True,
                                           num_workers=2, **SMALL)
  builder.download_and_prepare()
  return builder


def test_synthetic_films_splits_labels_and_report(synthetic):
  source = synthetic.as_data_source()
  ids = {split: sorted(ex["film_id"].decode() for ex in source[split]) for split in source}
  assert ids == {"train": ["film_0000", "film_0001"], "validation": ["film_0002"],
                 "test": ["film_0003"]}
  for split in source:
    for ex in source[split]:
      i = int(ex["film_id"].decode()[-4:])
      valence, arousal = render.latent_curves(np.random.default_rng(i), 8)  # seed = 0 + i
      np.testing.assert_array_equal(ex["valence"], valence)
      np.testing.assert_array_equal(ex["arousal"], arousal)
      assert ex["vggish_logmel"].shape == (8, 96, 64)
      assert ex["visual_stats"].shape == (8, 25)
      assert np.isfinite(ex["vggish_logmel"]).all() and np.isfinite(ex["visual_stats"]).all()
  report = synthetic.info.metadata["build_report"]
  reasons = {s["film"]: s["reason"] for s in report["skipped"]}
  assert sorted(reasons) == sorted(synthetic_films.BAD_FILMS)
  assert "no audio" in reasons["bad_no_audio"]
  assert "empty" in reasons["bad_zero_length"]
  assert "cannot be read" in reasons["bad_no_index"]
  assert "no video stream" in reasons["bad_no_frames"]
  assert "truncated" in reasons["bad_truncated"] or "corrupt" in reasons["bad_truncated"]
  assert report["written"] == {"train": 2, "validation": 1, "test": 1}
  expected = manifest_lib.for_spec(EXTRACTORS)
  assert synthetic.info.metadata["feature_manifest"] == expected


def test_synthetic_features_follow_the_latents(synthetic):
  source = synthetic.as_data_source()
  examples = [ex for split in source for ex in source[split]]
  valence = np.concatenate([ex["valence"] for ex in examples])
  arousal = np.concatenate([ex["arousal"] for ex in examples])
  brightness = np.concatenate([ex["visual_stats"][:, 0] for ex in examples])  # mean luma
  loudness = np.concatenate([ex["vggish_logmel"].mean(axis=(1, 2)) for ex in examples])
  assert np.corrcoef(brightness, valence)[0, 1] > 0.9
  assert np.corrcoef(loudness, arousal)[0, 1] > 0.7


def test_default_kwargs_give_the_default_config(tmp_path):
  assert synthetic_films.SyntheticFilms(data_dir=str(tmp_path)).builder_config.name == "default"
  other = synthetic_films.SyntheticFilms(data_dir=str(tmp_path), num_films=5)
  assert other.builder_config.name.startswith("custom_")


def test_films_folder_with_clip_labels(tmp_path, capsys):
  folder = tmp_path / "my_films"
  folder.mkdir()
  infos = [render.render_film(folder / f"movie{i}.mp4", seed=20 + i, duration_s=5,
                              size=(96, 72), fps=8, sample_rate=16000) for i in range(2)]
  render.write_corrupt_film(folder / "broken.mp4", kind="no_index")
  render.render_film(folder / "unlabelled.mkv", seed=3, duration_s=2, size=(64, 48))
  # movie0: 5 clips of 1 s; movie1: 2 clips over 7 s (longer than the 5 s film: cut to 5).
  lines = ["film,start,end,valence,arousal,split"]
  lines += [f"movie0.mp4,{s},{s + 1},{infos[0]['valence'][s]:.6f},{infos[0]['arousal'][s]:.6f},"
            "train" for s in range(5)]
  lines += ["movie1,0,3.5,0.5,-0.25,test", "movie1,3.5,7,-0.5,0.75,test",
            "broken,0,4,0,0,train"]
  (folder / "labels.csv").write_text("\n".join(lines) + "\n")
  builder = films.Films(data_dir=str(tmp_path / "data"), films_dir=str(folder),
                        extractors=EXTRACTORS, num_workers=0)
  builder.download_and_prepare()
  source = builder.as_data_source()
  movie0 = source["train"][0]
  assert movie0["film_id"] == b"movie0" and len(source["train"]) == 1
  np.testing.assert_allclose(movie0["valence"], infos[0]["valence"], atol=1e-6)
  movie1 = source["test"][0]
  np.testing.assert_array_equal(movie1["valence"], np.float32([0.5] * 3 + [-0.5] * 2))
  np.testing.assert_array_equal(movie1["arousal"], np.float32([-0.25] * 3 + [0.75] * 2))
  assert movie1["visual_stats"].shape == (5, 25)
  report = builder.info.metadata["build_report"]
  assert {s["film"] for s in report["skipped"]} == {"broken", "unlabelled"}
  assert report["truncated"] == [{"film": "movie1", "split": "test", "kept_seconds": 5,
                                  "feature_seconds": 5, "label_seconds": 7,
                                  "cut_seconds": {"labels": 2}}]
  out = capsys.readouterr().out
  assert "broken:" in out and "unlabelled: no labels in" in out and "seconds cut: labels 2 s" in out


def test_films_missing_video_is_an_error(tmp_path):
  folder = tmp_path / "f"
  folder.mkdir()
  render.render_film(folder / "a.mp4", seed=1, duration_s=2, size=(64, 48))
  (folder / "labels.csv").write_text("film,second,valence,arousal\na,0,0,0\nb,0,0,0\n")
  builder = films.Films(data_dir=str(tmp_path / "data"), films_dir=str(folder),
                        extractors=EXTRACTORS, num_workers=0)
  with pytest.raises(DataError, match=r"labels name film\(s\) \['b'\]"):
    builder.download_and_prepare()
