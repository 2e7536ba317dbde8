"""Ensembles of K members created and trained in one `jit(vmap(...))`, predictions averaged.

Usable by any method whose model is a pure function of its state (every method of the contract):
the K members share one graph definition and their states are stacked along a leading member axis.

  members = ensemble.create(lambda rngs: method.create(config, dims, rngs), k=4,
                            seed=config.seed)             # K inits from split keys, one vmap
  step = ensemble.make_train_step(members.train_graphdef, phase.forward, task, tx, l2)
  params_K, mutable_K, frozen_K = members.states()
  opt_K = ensemble.init_optimizer(tx, params_K)
  for s in range(steps):                                  # one jitted call trains all K members
    params_K, mutable_K, opt_K, loss_K = step(params_K, mutable_K, frozen_K, opt_K, batch,
                                              ensemble.step_keys(step_key(seed, name, s), 4))
  predict = ensemble.make_predict(members.eval_graphdef, output.forward, task)
  member_preds_K, mean = predict(params_K, mutable_K, frozen_K, batch)   # {target: ...}
  ensemble.score_members(y_true, member_preds_K)          # {"members": [...], "ensemble": {...}}

Member i is exactly the model that `create_fn(nnx.Rngs(member_key(seed, i)))` makes, trained by
the single-member step (`make_member_step`) with dropout keys `fold_in(step_key, i)`: K members in one
jit equal K separately trained members (tests/test_ensemble.py). All members read the same batch by
default (`shared_batch=True`: they differ by initialisation and dropout, like the paper's runs 3 and 4
that differ by "initialization and epoch"); `shared_batch=False` takes batches with a leading K axis
(e.g. differently shuffled streams). A swept setting that does not change shapes (learning rate,
dropout rate held in the state) can ride the member axis the same way; settings that change the
graph cannot.

Seeds and members are different things: seeds are independent runs reported as mean +- std,
members are averaged into one prediction; a run with both has one ensemble per seed. The sweep's
seed axis may reuse this module (`make_train_step` with members = seeds) without averaging.

Device placement (`check_sharding`): the member axis is sharded over the devices
(`sharding="members"`: K must be a multiple of the device count; each device trains K / n members on
the whole batch) or the members are replicated and each batch is split over the devices
(`sharding="batch"`: the batch size must be a multiple of the device count).
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx

from emojax import contract
from emojax import errors
from emojax import metrics

SHARDINGS = ("members", "batch")


def member_key(seed: int, member: int) -> jax.Array:
  """The initialisation key of member `member` of an ensemble seeded by `seed`."""
  return jax.random.fold_in(jax.random.key(seed), member)


def member_keys(seed: int, k: int) -> jax.Array:
  return jax.vmap(lambda i: member_key(seed, i))(jnp.arange(k))


def step_keys(key: jax.Array, k: int) -> jax.Array:
  """Per-member dropout keys (K,) of one step: fold_in(key, member)."""
  return jax.vmap(lambda i: jax.random.fold_in(key, i))(jnp.arange(k))


@dataclasses.dataclass
class Members:
  """K members: one graph definition per mode and the stacked (K, ...) states."""
  train_graphdef: Any   # dropout on, BatchNorm batch statistics
  eval_graphdef: Any    # dropout off, BatchNorm as the model's inference mode says
  params: Any           # the trainable Params
  mutable: Any          # every non-Param variable (BatchNorm statistics, ...)
  frozen: Any           # the other Params

  @property
  def k(self) -> int:
    return int(jax.tree.leaves(self.params)[0].shape[0])

  def states(self) -> tuple:
    return self.params, self.mutable, self.frozen


def create(create_fn: Callable[[nnx.Rngs], nnx.Module], k: int, seed: int,
           trainable: Any = nnx.Param) -> Members:
  """K members from split keys (`member_key(seed, i)`) in one jit(vmap(create_fn)).

  `create_fn(rngs)` builds one member; every member is what `create_fn(nnx.Rngs(member_key(seed,
  i)))` builds.
  """
  if int(k) != k or k < 1:
    raise errors.ConfigError(f"ensemble size {k!r} (config.train.ensemble) must be a positive "
                             "integer")
  filters = (trainable, contract.MUTABLE, ...)

  def one(key):
    return nnx.split(create_fn(nnx.Rngs(key)), *filters)[1:]

  defs = []
  for train in (True, False):
    abstract = nnx.eval_shape(lambda: create_fn(nnx.Rngs(0)))
    abstract.train() if train else abstract.eval()
    defs.append(nnx.split(abstract, *filters)[0])
  params, mutable, frozen = jax.jit(jax.vmap(one))(member_keys(seed, int(k)))
  return Members(defs[0], defs[1], params, mutable, frozen)


def init_optimizer(tx: optax.GradientTransformation, params_K):
  return jax.vmap(tx.init)(params_K)


def make_member_step(graphdef, forward: contract.Forward, task: contract.Task,
                     tx: optax.GradientTransformation, l2: float = 0.0, form: dict | None = None):
  """One member's step (params, mutable, frozen, opt_state, batch, key) -> (..., loss), unjitted.

  The same step as the harness's (contract losses, coupled L2, dropout from `key`) in the
  harness's form (`train.formed_step`; `form` None: `member_form` of the params it is given).
  """
  from emojax import train  # pylint: disable=g-import-not-at-top

  def step(params, mutable, frozen, opt_state, batch, key):
    f = form or member_form(params)     # shapes only: the same at every trace
    return train.formed_step(graphdef, forward, task, tx, l2, f)(
        params, mutable, frozen, opt_state, batch, key)
  return step


def member_form(params) -> dict:
  """The members' step form: the harness's size rule (`train.step_form`) over all K members'
  parameters with threefry dropout keys, whose masks are the same under vmap (RngBitGenerator's
  are not: `unsafe_rbg` under vmap draws every member's bits from the first member's key), so
  member i of the vmapped step trains as member i alone."""
  from emojax import train  # pylint: disable=g-import-not-at-top
  return train.step_form(params, rbg=False)


def make_train_step(graphdef, forward: contract.Forward, task: contract.Task,
                    tx: optax.GradientTransformation, l2: float = 0.0, shared_batch: bool = True,
                    donate: bool = True) -> "MembersStep":
  """The K members' step in one jit: jit(vmap(member step)) over stacked states and keys (K,).

  (params_K, mutable_K, frozen_K, opt_K, batch, keys_K) -> (params_K, mutable_K, opt_K, loss_K).
  The member step takes the harness's form (`member_form` of all K members' parameters: Eigen
  threads and a flat optimizer update by size; threefry dropout keys), chosen at the first call.
  A loop of steps runs through `start` / `advance` / `trees` like `train.TrainStep`'s (the
  members' state carried in the form's layout between steps: flat (K, n) vectors with the flat
  update).
  """
  return MembersStep(graphdef, forward, task, tx, l2, shared_batch, donate)


class MembersStep:
  """`make_train_step`'s step: called on stacked trees with per-member keys, or as a loop
  (`carry = step.start(params_K, mutable_K, opt_K)`; `carry, loss_K = step.advance(carry,
  frozen_K, batch, train.phase_key(seed, phase), s)`, member i's dropout key
  fold_in(step_key(seed, phase, s), i) as `step_keys` gives it; `step.trees(carry)`)."""

  def __init__(self, graphdef, forward, task, tx, l2, shared_batch, donate):
    self.graphdef, self.forward, self.task, self.tx, self.l2 = graphdef, forward, task, tx, l2
    self.batch_axis = None if shared_batch else 0
    self.donate = donate
    self._compiled, self._carried = {}, {}

  def __call__(self, params, mutable, frozen, opt_state, batch, keys):
    from emojax import train  # pylint: disable=g-import-not-at-top
    sig = jax.tree.structure(params)
    if sig not in self._compiled:
      form = self.form(params)
      one = make_member_step(self.graphdef, self.forward, self.task, self.tx, self.l2, form)
      vstep = jax.vmap(one, in_axes=(0, 0, 0, 0, self.batch_axis, 0))
      self._compiled[sig] = train.jit_step(vstep, form,
                                           donate_argnums=(0, 1, 3) if self.donate else ())
    return self._compiled[sig](params, mutable, frozen, opt_state, batch, keys)

  def form(self, params_K) -> dict:
    return member_form(params_K)

  def start(self, params_K, mutable_K, opt_K):
    """The loop's carry from stacked state trees (new buffers: the loop donates them)."""
    from emojax import train  # pylint: disable=g-import-not-at-top
    sig = jax.tree.structure(params_K)
    if sig not in self._carried:
      self._carried[sig] = self._carried_step(params_K, opt_K)
    c = self._carried[sig]
    return (c, *train._fresh(c["pack"](params_K, mutable_K, opt_K)))  # pylint: disable=protected-access

  def advance(self, carry, frozen_K, batch, phase_key: jax.Array, step: int):
    """One step of all K members: (carry, loss_K); the carry given is donated."""
    c, *state = carry
    *state, loss = c["step"](*state, frozen_K, batch, phase_key, np.uint32(step))
    return (c, *state), loss

  def trees(self, carry):
    """(params_K, mutable_K, opt_K) of a carry (which stays valid)."""
    from emojax import train  # pylint: disable=g-import-not-at-top
    c, *state = carry
    return train._fresh(c["unpack"](*state))  # pylint: disable=protected-access

  def _carried_step(self, params_K, opt_K) -> dict:
    from emojax import train  # pylint: disable=g-import-not-at-top
    form = self.form(params_K)
    k = int(jax.tree.leaves(params_K)[0].shape[0])
    layout = (train._FlatLayout(unstack(params_K, 0), unstack(opt_K, 0))  # pylint: disable=protected-access
              if form["flat"] else None)
    one = train.formed_step(self.graphdef, self.forward, self.task, self.tx, self.l2, form,
                            layout=layout)
    vone = jax.vmap(one, in_axes=(0, 0, 0, 0, self.batch_axis, 0))

    def keyed(p, mutable, opt, frozen, batch, pkey, s):
      keys = step_keys(jax.random.fold_in(pkey, s), k)
      return vone(p, mutable, frozen, opt, batch, keys)
    out = {"step": train.jit_step(keyed, form, donate_argnums=(0, 1, 2) if self.donate else ())}
    if layout is None:
      out["pack"] = out["unpack"] = lambda *trees: trees
    else:
      out["pack"] = jax.jit(lambda p, m, o: (jax.vmap(layout.ravel)(p), m,
                                             jax.vmap(layout.ravel_opt)(o)))
      out["unpack"] = jax.jit(lambda fp, m, fo: (jax.vmap(layout.unravel)(fp), m,
                                                 jax.vmap(layout.unravel_opt)(fo)))
    return out


def make_predict(graphdef, forward: contract.Forward, task: contract.Task):
  """jit(vmap(forward)) -> (member predictions {target: (K, ...)}, their mean {target: (...)}).

  Predictions are the contract's (`contract.predictions`: values in [-1, 1] for regression,
  class probabilities for classification), so the mean averages predictions, not logits.
  """
  def one(params, mutable, frozen, batch):
    model = nnx.merge(graphdef, params, mutable, frozen, copy=True)
    return contract.predictions(task, forward(model, batch, None))

  vone = jax.vmap(one, in_axes=(0, 0, 0, None))

  @jax.jit
  def predict(params_K, mutable_K, frozen_K, batch):
    members = vone(params_K, mutable_K, frozen_K, batch)
    return members, jax.tree.map(lambda x: jnp.mean(x, axis=0), members)
  return predict


def score_members(y_true, member_preds_KxN, valid_N=None) -> dict:
  """Regression metrics of each member and of the averaged prediction over the valid entries.

  Returns {"members": [metrics of member 0, ...], "ensemble": metrics of the mean}.
  """
  preds = np.asarray(member_preds_KxN, np.float64)
  true = np.asarray(y_true, np.float64).reshape(-1)
  preds = preds.reshape(preds.shape[0], -1)
  if valid_N is not None:
    keep = np.asarray(valid_N, bool).reshape(-1)
    true, preds = true[keep], preds[:, keep]
  return {"members": [metrics.regression_metrics(true, p, f"member {i}")
                      for i, p in enumerate(preds)],
          "ensemble": metrics.regression_metrics(true, preds.mean(0), "ensemble")}


def check_sharding(k: int, batch_size: int, num_devices: int, sharding: str = "members") -> None:
  """ConfigError when K members (config.train.ensemble) do not fit the device placement."""
  if int(k) != k or k < 1:
    raise errors.ConfigError(f"config.train.ensemble={k!r} must be a positive integer")
  if sharding not in SHARDINGS:
    raise errors.ConfigError(f"config.train.ensemble_sharding={sharding!r}; use one of "
                             f"{SHARDINGS}")
  if sharding == "members" and k % num_devices:
    raise errors.ConfigError(
        f"config.train.ensemble={k} members cannot be split evenly over {num_devices} devices; "
        f"use a multiple of {num_devices}, or config.train.ensemble_sharding='batch'")
  if sharding == "batch" and batch_size % num_devices:
    raise errors.ConfigError(
        f"config.data.batch_size={batch_size} cannot be split over {num_devices} devices for "
        f"the ensemble's batch sharding; use a multiple of {num_devices}")


def member_sharding(mesh: jax.sharding.Mesh, sharding: str = "members"):
  """The NamedSharding of stacked member states: K over the mesh's axis, or replicated."""
  from jax.sharding import NamedSharding, PartitionSpec as P  # pylint: disable=g-import-not-at-top
  axis = mesh.axis_names[0]
  return NamedSharding(mesh, P(axis) if sharding == "members" else P())


def unstack(tree, member: int):
  """Member `member`'s state out of a stacked one (e.g. to save or evaluate it alone)."""
  return jax.tree.map(lambda x: x[member], tree)
