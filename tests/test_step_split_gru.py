"""benchmarks/step_split.py's classes for seed 001's GRU + MoE step (`--model gru`): thunks from
the HLO metadata of the step (Python stack innermost first, op_name) and PyTorch's aten ops (name
and operand shapes), each against the class a reader of the step would give it by hand."""

import pytest

from benchmarks import step_split

PROJ = ["_project", "_projection_fwd", "time_major_projection", "GRULayer.gates"]
SCAN = ["_gru_scan_fn.<locals>.forward.<locals>.step", "_gru_scan_fn.<locals>.forward",
        "gru_scan_streams", "run_recurrent_stacks"]
SCAN_BWD = ["_gru_scan_fn.<locals>.scan_bwd", "gru_scan_streams", "run_recurrent_stacks"]


@pytest.mark.parametrize("stack, op_name, expected", [
    (PROJ, "jit(keyed)/jvp(btd,dg->btg)/dot_general", "input proj fwd"),
    (["_projection_bwd"] + PROJ[2:], "jit(keyed)/transpose(jvp())/dot_general", "input proj dW"),
    (PROJ[2:], "jit(keyed)/transpose(jvp())/transpose", "input proj dW"),
    (SCAN, "jit(keyed)/jvp()/while/body/closed_call/dot_general", "recurrent dots fwd"),
    (SCAN, "jit(keyed)/jvp()/while/body/closed_call/tanh", "gates elementwise fwd"),
    (SCAN_BWD, "jit(keyed)/transpose(jvp())/while/body/closed_call/dot_general",
     "recurrent dots bwd"),
    (SCAN_BWD, "jit(keyed)/transpose(jvp())/while/body/closed_call/mul", "gates elementwise bwd"),
    (SCAN_BWD, "jit(keyed)/transpose(jvp())/dot_general", "dW_hh"),
    (SCAN, "jit(keyed)/jvp()/concatenate", "scan buffers, copies"),
    (["ContextGating.__call__", "GruMoe._head"], "jit(keyed)/jvp()/logistic", "head"),
    (["scale_by_adam.<locals>.update_fn", "chain"], "jit(keyed)/sqrt", "optimizer"),
    ([], "", "unattributed"),
])
def test_gru_jax_classes(stack, op_name, expected):
  assert step_split._gru_jax_class(stack, op_name) == expected


@pytest.mark.parametrize("key, shapes, expected", [
    ("aten::mm", [[30720, 2048], [2048, 768]], "input proj fwd"),
    ("aten::mm", [[768, 30720], [30720, 2048]], "input proj dW"),
    ("aten::mm", [[30720, 128], [128, 768]], "input proj fwd"),
    ("aten::addmm", [[768], [512, 256], [256, 768], [], []], "recurrent dots"),
    ("aten::mm", [[768, 512], [512, 256]], "recurrent dots"),
    ("aten::mm", [[512, 768], [768, 768]], "head"),
    ("aten::sigmoid_", [[512, 256]], "gates elementwise"),
    ("aten::tanh_backward", [[512, 256], [512, 256]], "gates elementwise"),
    ("aten::cat", [[], []], "scan buffers, copies"),
    ("aten::t", [[768, 256]], "scan buffers, copies"),
    ("aten::_foreach_add_", [[]], "optimizer"),
    ("aten::addcdiv_", [[768, 256]], "optimizer"),
    ("aten::native_batch_norm", [[512, 768]], "head"),
])
def test_gru_torch_classes(key, shapes, expected):
  assert step_split._gru_torch_class(key, shapes) == expected
