"""Honest progress lines (issue 21 item 9): the ETA leaves compilation out, the phase-done line
labels per-target validation metrics and never shows test scores."""

import pytest

from emojax import contract, train


class _Clock:
  def __init__(self, t):
    self.t = t

  def __call__(self):
    return self.t


def test_eta_is_measured_after_the_compiled_first_step(monkeypatch):
  clock = _Clock(100.0)
  monkeypatch.setattr(train.time, "time", clock)
  p = train.Progress("ph", 0, 51)
  clock.t = 130.0                      # the first step compiled for 30 s
  p.compiled(None)
  assert p.line(1, 0.5) == ("   ph step 1/51 loss 0.5000 (first step with compilation 30.0 s); "
                            "ETA after the next compiled steps")
  clock.t = 138.0
  p.first_time("validation", 3.0)      # the first validation compiles: left out
  p.first_time("validation", 9.0)      # later ones recur: counted
  clock.t = 140.0
  # 10 steps (2..11) in 140 - 130 - 3 = 7 s; 40 steps left.
  assert p.line(11, 0.25) == (f"   ph step 11/51 loss 0.2500 {10 / 7:.2f} steps/s "
                              f"ETA {40 * 0.7:.0f}s")
  assert p.rate == pytest.approx(10 / 7)


def test_a_resumed_phase_times_from_its_first_step(monkeypatch):
  clock = _Clock(0.0)
  monkeypatch.setattr(train.time, "time", clock)
  p = train.Progress("ph", 20, 30)
  clock.t = 50.0
  p.compiled(None)
  clock.t = 54.0
  assert p.line(25, 1.0).endswith(" 1.00 steps/s ETA 5s")   # steps 22..25 in 4 s


def test_phase_done_line_labels_each_target_and_shows_no_test_split():
  task = contract.Task(targets=("valence", "arousal"))
  val = {"pcc": 0.3, "mse": 0.2, "valence_pcc": 0.5, "valence_ccc": 0.25, "valence_mse": 0.1,
         "arousal_pcc": 0.1, "arousal_ccc": 0.05, "arousal_mse": 0.3}
  line = train.phase_done_line("v/finetune", task, val, 6, 12.3)
  assert line == ("   done v/finetune (best step 6, 12 s): validation (before post-processing): "
                  "valence pcc 0.500 ccc 0.250 mse 0.1000; arousal pcc 0.100 ccc 0.050 mse 0.3000")
  one = train.phase_done_line("a/x", contract.Task(targets=("arousal",)),
                              {"pcc": 0.2, "ccc": 0.1, "mse": 0.4}, None, 1)
  assert one == ("   done a/x (1 s): validation (before post-processing): arousal pcc 0.200 "
                 "ccc 0.100 mse 0.4000")
  assert train.phase_done_line("a/x", contract.Task(targets=("arousal",)), None, 3, 1).endswith(
      ": no validation split")
