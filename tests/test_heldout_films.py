"""benchmarks/heldout_films.py: the scores by hand, and the further films it renders."""

import numpy as np

from benchmarks import heldout_films


def test_scores_by_hand():
  pred = np.array([0.0, 1.0, 2.0, 1.0, 0.0, 4.0])
  labels = np.array([0.0, 2.0, 1.0, 3.0, 1.0, 2.0])
  films = np.array([7, 7, 7, 9, 9, 9])
  s = heldout_films.scores(pred, labels, films)
  # Pooled: sum of products of deviations over the root of the sums of squares (means 4/3, 3/2).
  dp, dl = pred - 4 / 3, labels - 1.5
  assert np.isclose(s["pcc"], (dp * dl).sum() / np.sqrt((dp ** 2).sum() * (dl ** 2).sum()))
  # Film 7: pred (0, 1, 2) vs (0, 2, 1): deviations (-1, 0, 1) / (-1, 1, 0): r = 1 / 2.
  # Film 9: pred (1, 0, 4) vs (3, 1, 2): deviations (-2/3, -5/3, 7/3) / (1, -1, 0): r = (1) /
  # sqrt((4 + 25 + 49) / 9 * 2) = 1 / sqrt(52 / 3).
  assert np.isclose(s["film_pcc"], (0.5 + 1 / np.sqrt(52 / 3)) / 2)
  assert np.isclose(s["mse"], (0 + 1 + 1 + 4 + 1 + 4) / 6)


def test_further_films_are_the_films_after_the_datasets_own():
  from emojax.datasets import synthetic_clips  # pylint: disable=import-outside-toplevel
  cfg = next(c for c in synthetic_clips.SyntheticClips.BUILDER_CONFIGS if c.name == "frames_small")
  clips, labels, films = heldout_films.further_films(cfg, "frame_clips", "valence",
                                                     cfg.num_films, 1)
  n = cfg.clips_per_film
  assert clips.shape == (n, cfg.frame_clips_frames, cfg.frame_height, cfg.frame_width, 3)
  assert clips.dtype == np.uint8
  assert films.tolist() == [cfg.num_films] * n
  # The labels: the clip means of the film's latent valence curve plus the annotator noise,
  # clipped to [-1, 1] (synthetic_clips' definition), within 4 noise stds of the latent means.
  latent = synthetic_clips.film_labels(cfg, cfg.num_films)["valence_latent"]
  assert np.all(np.abs(labels - latent) <= 4 * cfg.label_noise_std + 1e-6)
  assert np.all(np.abs(labels) <= 1.0)
  # Valence sets the pictures' brightness (synthetic_films_render: 0.18 + 0.64 (v + 1) / 2), so
  # the clips' mean pixel value follows the picture's valence at the frames' times, the cue.
  cue = heldout_films.picture_cue(cfg, "valence", cfg.num_films)
  assert cue.shape == (n,)
  assert np.corrcoef(clips.reshape(n, -1).mean(1), cue)[0, 1] > 0.9


def test_refuses_a_folder_that_is_not_a_trained_run_and_a_bad_film_count(tmp_path, capsys):
  assert heldout_films.main([f"--runs={tmp_path}"]) == 2
  err = capsys.readouterr().err
  assert err.startswith("error: --runs: ") and "has no config.json and final_model" in err
  run = tmp_path / "seed=0"
  (run / "final_model").mkdir(parents=True)
  (run / "config.json").write_text("{}")
  assert heldout_films.main([f"--runs={run}", "--films=0"]) == 2
  assert "--films=0: give at least 1" in capsys.readouterr().err
