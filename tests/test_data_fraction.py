"""config.data.fraction: a run (an ensemble member) trains on a seeded share of the training films."""

import json

import numpy as np
import pytest

from conftest import toy_data_dir
from emojax import errors, input_pipeline, members, train

import clip_method  # pylint: disable=g-bad-import-order


def _config(data_dir, **data):
  c = clip_method.get_config()
  with c.unlocked():
    c.dataset.data_dir = str(data_dir)
    c.train.epochs = 1.0
    for k, v in data.items():
      c.data[k] = v
  return c


def test_the_films_trained_on_are_the_seeded_share(tmp_path):
  # As an ensemble member names it (train.ensemble_members = ("data.fraction=0.7; seed=3", ...)).
  config = members.member_config(_config(toy_data_dir()), "data.fraction=0.7; seed=3")
  assert config.data.fraction == 0.7 and config.seed == 3
  whole = train.Trainer(members.member_config(config, "data.fraction=1.0"), tmp_path / "whole")
  assert whole.trained_films == []
  films = sorted(set(whole.stores["train"].film_ids))      # after the held-out films
  # Independently: 70% of the films, rounded, drawn by numpy's generator seeded (seed, 1).
  n = int(np.floor(0.7 * len(films) + 0.5))
  perm = np.random.Generator(np.random.PCG64(np.random.SeedSequence([3, 1]))).permutation(
      len(films))
  want = sorted(films[i] for i in perm[:n])
  assert 0 < n < len(films)
  trainer = train.Trainer(config, tmp_path / "run")
  assert trainer.trained_films == want
  assert sorted(set(trainer.stores["train"].film_ids)) == want
  clips = [c for c, f in zip(whole.stores["train"].clip_ids, whole.stores["train"].film_ids)
           if f in want]
  assert trainer.stores["train"].clip_ids == clips
  # Validation and test are whole; the held-out films are the same as without a fraction.
  assert trainer.holdout == whole.holdout
  assert trainer.stores["test"].clip_ids == whole.stores["test"].clip_ids
  records = trainer.run()
  assert records and all(r["best_step"] >= 1 for r in records)
  saved = json.loads((tmp_path / "run" / "fraction.json").read_text())
  assert saved["train_films"] == want and saved["fraction"] == 0.7 and saved["seed"] == 3
  assert not (tmp_path / "whole" / "fraction.json").exists()


@pytest.mark.parametrize("fraction", [0.0, 1.5])
def test_a_fraction_outside_0_1_is_refused(tmp_path, fraction):
  with pytest.raises(errors.ConfigError, match=rf"config.data.fraction={fraction}"):
    train.Trainer(_config(toy_data_dir(), fraction=fraction), tmp_path / "run")


def test_fraction_films_keeps_at_least_one_film():
  assert input_pipeline.fraction_films(["a", "a", "b"], 0.1, 0) in (["a"], ["b"])
