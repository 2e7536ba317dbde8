"""emojax/ensemble.py: K members trained in one jit(vmap) equal K members trained one by one with
the same seeds; averaged predictions and per-member metrics against NumPy; device-fit errors."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import nnx

from configs import gru_moe as gru_moe_config
from emojax import contract
from emojax import ensemble
from emojax import errors
from emojax.models import gru_moe

DIMS = {"scene": 5, "audio": 3, "expression": 4}
B, L, K, STEPS = 4, 5, 3, 3


def _config():
  c = gru_moe_config.get_config("runlocal")
  with c.unlocked():
    c.model.hidden = 4
    c.model.window_seconds = L
  return c


def _batch(step, member=None):
  rng = np.random.default_rng([step] if member is None else [step, member])
  mask = np.ones((B, L), bool)
  mask[2, 3:] = False
  return {"x": {m: rng.normal(size=(B, L, 1, d)).astype(np.float32) for m, d in DIMS.items()},
          "y": {t: rng.uniform(-1, 1, size=(B, L)).astype(np.float32)
                for t in ("valence", "arousal")},
          "x_mask": {m: mask[..., None] for m in DIMS}, "clip_mask": mask}


def _stack(trees):
  return jax.tree.map(lambda *xs: np.stack(xs), *trees)


@pytest.mark.parametrize("shared_batch", [True, False])
def test_vmapped_members_equal_separately_trained_members(shared_batch):
  c = _config()
  create_fn = lambda rngs: gru_moe.create(c, DIMS, rngs)
  task, tx, l2 = gru_moe.task(c), optax.adam(1e-2), 1e-3
  members = ensemble.create(create_fn, K, seed=7)
  step = ensemble.make_train_step(members.train_graphdef, gru_moe.forward, task, tx, l2,
                                  shared_batch=shared_batch)
  params, mutable, frozen = members.states()
  opt = ensemble.init_optimizer(tx, params)
  batches = [_batch(s) if shared_batch else _stack([_batch(s, i) for i in range(K)])
             for s in range(STEPS)]
  losses = []
  for s in range(STEPS):
    keys = ensemble.step_keys(jax.random.key(100 + s), K)
    params, mutable, opt, loss = step(params, mutable, frozen, opt, batches[s], keys)
    losses.append(np.asarray(loss))

  # The same members, one at a time, by the single-member step and the same keys.
  one = None
  for i in range(K):
    model = create_fn(nnx.Rngs(ensemble.member_key(7, i)))
    model.train()
    graphdef, p, m, f = nnx.split(model, nnx.Param, contract.MUTABLE, ...)
    one = one or jax.jit(ensemble.make_member_step(graphdef, gru_moe.forward, task, tx, l2))
    o = tx.init(p)
    for s in range(STEPS):
      batch = batches[s] if shared_batch else ensemble.unstack(batches[s], i)
      key = jax.random.fold_in(jax.random.key(100 + s), i)
      p, m, o, loss = one(p, m, f, o, batch, key)
      np.testing.assert_allclose(float(loss), losses[s][i], rtol=1e-5)
    for got, want in zip(jax.tree.leaves(ensemble.unstack((params, mutable), i)),
                         jax.tree.leaves((p, m))):
      np.testing.assert_allclose(np.asarray(got), np.asarray(want), rtol=1e-4, atol=1e-6)
  # Members really differ (split keys), so the equality above is not trivial.
  first = jax.tree.leaves(params)[0]
  assert not np.allclose(np.asarray(first[0]), np.asarray(first[1]))


def test_predictions_are_averaged_and_members_scored():
  c = _config()
  create_fn = lambda rngs: gru_moe.create(c, DIMS, rngs)
  task = gru_moe.task(c)
  members = ensemble.create(create_fn, K, seed=3)
  predict = ensemble.make_predict(members.eval_graphdef, gru_moe.forward, task)
  batch = _batch(0)
  member_preds, mean = predict(*members.states(), batch)
  for i in range(K):
    model = create_fn(nnx.Rngs(ensemble.member_key(3, i)))
    model.eval()
    want = contract.predictions(task, gru_moe.forward(model, batch, None))
    for t in task.targets:
      np.testing.assert_allclose(np.asarray(member_preds[t][i]), np.asarray(want[t]),
                                 rtol=1e-5, atol=1e-6)
  for t in task.targets:
    np.testing.assert_allclose(np.asarray(mean[t]), np.asarray(member_preds[t]).mean(0),
                               rtol=1e-6)
  valid = batch["clip_mask"]
  y = batch["y"]["valence"]
  scores = ensemble.score_members(y, np.asarray(member_preds["valence"]), valid)
  preds = np.asarray(member_preds["valence"], np.float64)[:, valid]
  for i in range(K):
    assert scores["members"][i]["pcc"] == pytest.approx(np.corrcoef(y[valid], preds[i])[0, 1])
  assert scores["ensemble"]["mse"] == pytest.approx(np.mean((y[valid] - preds.mean(0)) ** 2))


def test_sizes_that_do_not_fit_the_devices_name_the_key():
  ensemble.check_sharding(4, 64, 2, "members")
  ensemble.check_sharding(3, 64, 2, "batch")
  with pytest.raises(errors.ConfigError, match="config.train.ensemble=3"):
    ensemble.check_sharding(3, 64, 2, "members")
  with pytest.raises(errors.ConfigError, match="config.data.batch_size=63"):
    ensemble.check_sharding(4, 63, 2, "batch")
  with pytest.raises(errors.ConfigError, match="config.train.ensemble"):
    ensemble.create(lambda rngs: None, 0, seed=0)
