"""benchmarks/thunk_threads.py's per-thread summary of a profiler trace, on a hand-made trace."""

from benchmarks import thunk_threads


def _meta(tid, name):
  return {"ph": "M", "name": "thread_name", "pid": 1, "tid": tid, "args": {"name": name}}


def _x(tid, ts, dur):
  return {"ph": "X", "pid": 1, "tid": tid, "ts": ts, "dur": dur, "name": "fusion"}


def test_busy_and_overlap_by_hand():
  # Thread 1 busy [0, 10) and [20, 30) (a nested event inside the first adds no time);
  # thread 2 busy [5, 25); the main thread's events are not the pool's and are ignored.
  events = [_meta(1, "tf_XLAEigen/1"), _meta(2, "tf_XLAEigen/2"), _meta(3, "python"),
            _x(1, 0, 10), _x(1, 2, 3), _x(1, 20, 10), _x(2, 5, 20), _x(3, 0, 1000)]
  s = thunk_threads.thread_summary(events, steps=2)
  # busy per step: thread 1 20 us / 2, thread 2 20 us / 2 (in ms); events per step 3 / 2, 1 / 2
  assert sorted((n, round(ms * 1e3, 6)) for _, n, ms in s["threads"]) == [(0.5, 10.0),
                                                                         (1.5, 10.0)]
  # at once: [5, 10) and [20, 25) = 10 us; either: [0, 30) = 30 us; per step / 2, in ms
  assert round(s["both_ms"] * 1e3, 6) == 5.0
  assert round(s["either_ms"] * 1e3, 6) == 15.0


def test_one_thread_has_no_overlap():
  events = [_meta(7, "tf_XLAEigen/7"), _x(7, 0, 4), _x(7, 10, 4)]
  s = thunk_threads.thread_summary(events, steps=1)
  assert s["both_ms"] == 0.0
  assert round(s["either_ms"] * 1e3, 6) == 8.0
