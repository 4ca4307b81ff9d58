"""The validation set of issue #25's protocol: prompts of their own stream, a quarter of the test
prompts, scored for the model alone; what the report picks a cell's configuration by."""
from __future__ import annotations

from icl.evaluation.evaluate import eval_seeds, evaluate_run, validation_prompts
from icl.training.seeds import stream_of
from icl.training.train import train_run


def test_validation_prompts_are_not_the_test_prompts():
    test, validation = eval_seeds(64, 16), eval_seeds(16, 16, "validation")
    assert {stream_of(s) for s in test} == {"eval"} and {stream_of(s) for s in validation} == {"validation"}
    assert validation_prompts(64) == 16 and validation_prompts(1) == 1


def test_an_evaluation_records_the_validation_tail(tmp_path, make_run):
    run = make_run(steps=2)
    run.eval.update(prompts=40, batch=16, bootstrap=20)
    train_run(run, tmp_path, progress=False)
    first = evaluate_run(run, tmp_path, tmp_path / "a.json", progress=False)
    again = evaluate_run(run, tmp_path, tmp_path / "b.json", progress=False)
    assert first["validation"]["prompts"] == 10
    tail = first["validation"]["model_tail"]
    assert tail is not None and tail > 0 and tail == again["validation"]["model_tail"]
    assert tail != first["summary"]["model_tail"]   # other prompts: another number
