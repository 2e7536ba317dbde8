"""Windows of clips, masks at ragged film ends, deterministic shuffling, validation of films."""

import numpy as np
import pytest

from emojax import errors, input_pipeline


def _store(lengths=(23, 7, 30), dims=(("a", 2), ("b", 3))):
  examples = []
  for i, t in enumerate(lengths):
    ex = {"film_id": f"f{i}".encode()}
    for m, d in dims:
      ex[m] = (np.arange(t * d, dtype=np.float32).reshape(t, d) + 1000 * i)
    ex["valence"] = np.linspace(-1, 1, t, dtype=np.float32)
    examples.append(ex)
  return input_pipeline.FilmStore.from_examples("toy/train", examples, [m for m, _ in dims],
                                                ["valence"])


def test_eval_windows_cover_every_second_once_with_masks():
  store = _store()
  seen = {i: np.zeros(t, int) for i, t in enumerate(store.lengths)}
  for batch in input_pipeline.eval_batches(store, clip_seconds=5, num_clips_per_window=2,
                                           batch_size=3):
    assert batch["x"]["b"].shape == (3, 2, 5, 3)
    for b in range(3):
      f, c0 = int(batch["film_index"][b]), int(batch["clip_start"][b])
      for k in range(2):
        valid = batch["x_mask"]["b"][b, k]
        assert batch["clip_mask"][b, k] == valid.any()
        for s in np.flatnonzero(valid):
          second = (c0 + k) * 5 + s
          seen[f][second] += 1
          # The window holds exactly that second's features.
          np.testing.assert_array_equal(batch["x"]["a"][b, k, s], store.streams["a"][f][second])
        if valid.any():
          secs = (c0 + k) * 5 + np.flatnonzero(valid)
          assert batch["y"]["valence"][b, k] == pytest.approx(
              store.labels["valence"][f][secs].mean(), abs=1e-6)
        # Padding is zero.
        assert not batch["x"]["a"][b, k][~valid].any()
  for f, counts in seen.items():
    assert (counts == 1).all(), f


def test_train_batches_are_deterministic_and_resumable():
  store = _store()
  kw = dict(clip_seconds=5, num_clips_per_window=1, batch_size=4, seed=3)
  it = input_pipeline.train_batches(store, **kw)
  first = [next(it) for _ in range(6)]
  again = input_pipeline.train_batches(store, **kw, start_step=4)
  for expect in first[4:]:
    got = next(again)
    np.testing.assert_array_equal(got["film_index"], expect["film_index"])
    np.testing.assert_array_equal(got["clip_start"], expect["clip_start"])
    np.testing.assert_array_equal(got["x"]["a"], expect["x"]["a"])
  other = input_pipeline.train_batches(store, **{**kw, "seed": 4})
  assert any((next(other)["clip_start"] != b["clip_start"]).any() for b in first[:3])
  # 13 clips (5 + 2 + 6): the first 3 batches of 4 are 12 distinct clips of the first epoch.
  pairs = {(int(f), int(c)) for b in first[:3] for f, c in zip(b["film_index"], b["clip_start"])}
  assert len(pairs) == 12


def test_window_index_strides():
  store = _store(lengths=(23,))
  # 5 clips of 5 s; training windows of 2 clips at stride 1 start at 0..3, eval windows at 0, 2, 4.
  rows = input_pipeline.window_index(store, 5, 2, 1)
  assert rows[:, 1].tolist() == [0, 1, 2, 3]
  rows = input_pipeline.window_index(store, 5, 2, 2)
  assert rows[:, 1].tolist() == [0, 2, 4]


def test_standardize_uses_training_statistics():
  store = _store()
  stats = store.feature_stats()
  allx = np.concatenate(store.streams["b"])
  np.testing.assert_allclose(stats["b"]["mean"], allx.mean(0), rtol=1e-6)
  np.testing.assert_allclose(stats["b"]["std"], allx.std(0), rtol=1e-5)
  store.standardize(stats)
  z = np.concatenate(store.streams["b"])
  np.testing.assert_allclose(z.mean(0), 0, atol=1e-4)
  np.testing.assert_allclose(z.std(0), 1, atol=1e-4)


@pytest.mark.parametrize("mutate, message", [
    (lambda ex: ex.update(valence=ex["valence"][:-1]), "lengths differ"),
    (lambda ex: ex["a"].__setitem__((3, 1), np.nan), "NaN/Inf values \\(first at second 3\\)"),
    (lambda ex: ex.pop("b"), "has no stream 'b'"),
])
def test_bad_films_are_refused_naming_the_film(mutate, message):
  ex = {"film_id": b"bad", "a": np.zeros((9, 2), np.float32), "b": np.zeros((9, 3), np.float32),
        "valence": np.zeros(9, np.float32)}
  mutate(ex)
  with pytest.raises(errors.DataError, match=message) as e:
    input_pipeline.FilmStore.from_examples("toy/train", [ex], ["a", "b"], ["valence"])
  assert "'bad'" in str(e.value)


def test_every_unit_has_a_store_with_the_whole_protocol():
  from emojax import contract, errors  # pylint: disable=import-outside-toplevel
  assert set(input_pipeline.STORES) == set(contract.units()) == {"second", "clip"}
  members = [k for k in vars(input_pipeline.Store) if not k.startswith("_")]
  assert {"train_batches", "prediction_batches", "collector", "finish", "score",
          "write_report"} <= set(members)
  for unit, cls in input_pipeline.STORES.items():
    assert cls.unit == unit
    missing = [k for k in members if not hasattr(cls, k)]
    assert not missing, f"{cls.__name__} lacks {missing} of the Store protocol"
  with pytest.raises(errors.ConfigError, match="data unit 'frame'.*known units"):
    input_pipeline.store_class("frame")


def test_a_new_data_unit_is_one_registered_store(monkeypatch):
  """A per-shot unit added from outside the harness: registering its Store is all it takes for the
  contract to accept a method's Task(unit="shot") and for load_stores' unit of a dataset whose
  examples name their shot (`shot_id`) to be "shot"; the existing layouts keep their units."""
  from emojax import contract, errors  # pylint: disable=import-outside-toplevel
  monkeypatch.setattr(input_pipeline, "STORES", dict(input_pipeline.STORES))

  class ShotStore(input_pipeline.ClipStore):
    unit = "shot"
    description = "per-shot (one example per shot)"

    @staticmethod
    def reads(features):
      return "shot_id" in features

  with pytest.raises(errors.ConfigError, match="unit 'shot'"):
    contract.Task(targets=("valence",), unit="shot")
  assert input_pipeline.register_store(ShotStore) is ShotStore
  contract.check_task(contract.Task(targets=("valence",), unit="shot"))
  assert input_pipeline.store_class("shot") is ShotStore
  assert input_pipeline.dataset_unit(["shot_id", "film_id", "valence", "frames"]) == "shot"
  assert input_pipeline.dataset_unit(["clip_id", "film_id", "valence", "keyframe"]) == "clip"
  assert input_pipeline.dataset_unit(["film_id", "valence", "audio"]) == "second"
  with pytest.raises(ValueError, match="unit 'shot' has a store already"):
    input_pipeline.register_store(type("Other", (ShotStore,), {}))

  class Both(ShotStore):   # a second claim on the same layout is refused by name
    unit = "shot2"
  input_pipeline.register_store(Both)
  with pytest.raises(errors.DataError, match=r"claimed by the stores of units \['shot', 'shot2'\]"):
    input_pipeline.dataset_unit(["shot_id"])


def test_film_stores_concat_keeps_every_film_in_order():
  a, b = _store((23, 7)), _store((12,))
  b.film_ids = ["g0"]
  joined = input_pipeline.FilmStore.concat([a, b], "toy/train+validation")
  assert joined.film_ids == ["f0", "f1", "g0"] and list(joined.lengths) == [23, 7, 12]
  np.testing.assert_array_equal(joined.streams["b"][2], b.streams["b"][0])
  np.testing.assert_array_equal(joined.labels["valence"][1], a.labels["valence"][1])


def _clip_store(name, n, length, offset):
  source = [{"clip_id": f"{name}{i}", "film_id": f"{name}_film", "x": np.full((length, 2),
                                                                               offset + i,
                                                                               np.float32),
             "valence": np.float32(offset + i)} for i in range(n)]
  return input_pipeline.ClipStore(
      name, source, np.arange(n), [s["clip_id"] for s in source], [s["film_id"] for s in source],
      {"valence": np.array([s["valence"] for s in source], np.float32)}, ("x",),
      {"x": (length, 2)})


def test_clip_stores_concat_reads_each_clip_from_its_own_source():
  a, b = _clip_store("a", 3, 2, 0), _clip_store("b", 2, 4, 100)
  a = a.subset([2, 0], "a")          # rows of a source need not start at 0 or be in order
  joined = input_pipeline.ClipStore.concat([a, b], "ab")
  assert joined.clip_ids == ["a2", "a0", "b0", "b1"] and len(joined) == 4
  assert joined.shapes["x"] == (4, 2) and joined.ragged == ("x",)   # padded to the longest
  for i, (v, n) in enumerate([(2, 2), (0, 2), (100, 4), (101, 4)]):
    ex = joined.example(i)
    assert float(ex["y"]["valence"]) == v
    np.testing.assert_array_equal(ex["x"]["x"][:n], np.full((n, 2), v, np.float32))
    np.testing.assert_array_equal(ex["x_mask"]["x"], np.arange(4) < n)
