"""Evaluation: bootstrap bands, disjoint seeds, the very same prompts for model and baselines,
variants, diverged runs, user errors, and a small model that learns linear regression in context."""
from __future__ import annotations

import copy
import dataclasses
import json
import math

import pytest
import torch

from icl.evaluation.bootstrap import bootstrap_bands
from icl.evaluation.evaluate import eval_seeds, evaluate_run
from icl.tasks import make_task
from icl.training.errors import RunError
from icl.training.seeds import stream_of, stream_seed
from icl.training.train import build_for_run, train_run


@pytest.fixture(scope="module")
def trained(tmp_path_factory, make_run):
    """A tiny linear-regression run trained for a few steps (module-wide, trained once)."""
    folder = tmp_path_factory.mktemp("run")
    run = make_run(steps=8, checkpoint_every=8)
    run.eval.update(prompts=100, batch=32, bootstrap=200,
                       variants=["skewed_covariance", "scaled_x", "orthogonal_subspace"])
    train_run(run, folder, progress=False)
    return run, folder


# -- bootstrap -------------------------------------------------------------------------

def test_bootstrap_bands_bracket_the_mean():
    g = torch.Generator().manual_seed(0)
    errors = torch.rand(300, 7, generator=g, dtype=torch.float64) * torch.arange(1, 8)
    errors[::3, 2] = float("nan")   # masked entries do not count
    errors[:, 6] = float("nan")     # a position nobody counts
    bands = bootstrap_bands(errors, 500, torch.Generator().manual_seed(1))
    mean, lo, hi = bands["mean"], bands["lo"], bands["hi"]
    assert torch.allclose(mean[:6], torch.nanmean(errors[:, :6], dim=0))
    assert bool((lo[:6] < mean[:6]).all() and (mean[:6] < hi[:6]).all())
    assert torch.isnan(mean[6]) and torch.isnan(lo[6]) and torch.isnan(hi[6])
    # the band is a ~90% interval of the mean: about 2 * 1.645 standard errors wide
    stderr = errors[:, 0].std() / math.sqrt(300)
    assert 2.5 * stderr < hi[0] - lo[0] < 4.0 * stderr
    again = bootstrap_bands(errors, 500, torch.Generator().manual_seed(1))
    assert torch.equal(again["lo"][:6], lo[:6]) and torch.equal(again["hi"][:6], hi[:6])


def test_bootstrap_of_a_constant_has_no_width():
    bands = bootstrap_bands(torch.full((50, 3), 0.25, dtype=torch.float64), 100,
                            torch.Generator().manual_seed(0))
    assert torch.equal(bands["lo"], bands["mean"]) and torch.equal(bands["hi"], bands["mean"])


# -- seeds and prompts -----------------------------------------------------------------

def test_training_and_evaluation_seeds_never_meet():
    evals = set(eval_seeds(12_800, 64))
    assert len(evals) == 200 and {stream_of(s) for s in evals} == {"eval"}
    train = {stream_seed("train", seed, step) for seed in range(3) for step in range(5000)}
    assert not evals & train


def test_model_and_baselines_see_the_very_same_prompts(trained, tmp_path):
    run, folder = trained
    result = evaluate_run(run, folder, tmp_path / "eval.json", progress=False)
    # Re-draw the evaluation prompts by hand from the documented seeds and score them again.
    model, task, _ = build_for_run(run)
    model.load_state_dict(torch.load(folder / "model.pt", weights_only=True)["model"])
    model.eval()
    errors, zero_errors = [], []
    for seed in eval_seeds(100, 32):
        prompts = task.sample(torch.Generator().manual_seed(seed), 32, dims=5, points=11)
        with torch.no_grad():
            errors.append(task.error(prompts.gather(model(prompts.inputs)), prompts))
        zero_errors.append(task.error(torch.zeros_like(prompts.targets), prompts))
    expected = torch.cat(errors)[:100].double().mean(0)
    assert torch.allclose(torch.tensor(result["model"]["mean"], dtype=torch.float64), expected, atol=1e-6)
    zero = torch.cat(zero_errors)[:100].double().mean(0)
    assert torch.allclose(torch.tensor(result["baselines"]["zero"]["mean"], dtype=torch.float64), zero,
                          atol=1e-6)


def test_evaluation_file(trained, tmp_path):
    run, folder = trained
    out = tmp_path / "deep" / "eval.json"
    result = evaluate_run(run, folder, out, progress=False)
    on_disk = json.loads(out.read_text(), parse_constant=lambda c: pytest.fail(f"non-JSON {c}"))
    assert on_disk == result
    assert result["state"] == "done" and result["run_id"] == run.id and result["eval_id"] == run.eval_id
    assert result["metric"] == "squared error / d" and result["prompts"] == 100
    assert result["positions"] == list(range(11))
    for band in ("mean", "lo", "hi"):
        assert len(result["model"][band]) == 11
    assert set(result["baselines"]) == {"zero", "least_squares", "knn_3", "averaging"}
    assert all(b["prompts"] == 100 for b in result["baselines"].values())
    # least squares is exact once it has seen d = 5 examples
    assert max(result["baselines"]["least_squares"]["mean"][6:]) < 1e-6
    summary = result["summary"]
    assert summary["best_baseline"] == "least_squares"
    assert summary["model_tail"] == pytest.approx(sum(result["model"]["mean"][-3:]) / 3)
    assert set(result["variants"]) == {"skewed_covariance", "scaled_x", "orthogonal_subspace"}
    # orthogonal subspace scores only the first d queries; the others are null, not NaN
    ortho = result["variants"]["orthogonal_subspace"]["model"]["mean"]
    assert all(v is not None for v in ortho[:5]) and all(v is None for v in ortho[5:])
    # scaling x by 2 makes y four times larger: the untrained model's error grows
    assert result["variants"]["scaled_x"]["summary"]["model_tail"] > 2 * summary["model_tail"]
    assert not list(out.parent.glob(".*.tmp"))


def test_baseline_errors_are_shared_through_the_cache(trained, tmp_path, monkeypatch):
    run, folder = trained
    cache = tmp_path / "baselines"
    first = evaluate_run(run, folder, tmp_path / "a.json", progress=False, baseline_cache=cache)
    files = sorted(cache.glob("*.pt"))
    assert len(files) == len(first["baselines"]) * (1 + len(first["variants"]))  # per baseline and variant

    # A second evaluation on the same prompts computes no baseline: it reads them all.
    from icl.evaluation import baselines as registry

    def must_not_run(*args, **kwargs):
        raise AssertionError("a cached baseline was computed again")
    for name in first["baselines"]:
        monkeypatch.setattr(type(registry.BASELINES[name]), "predict", must_not_run)
    second = evaluate_run(run, folder, tmp_path / "b.json", progress=False, baseline_cache=cache)
    assert second["baselines"] == first["baselines"] and second["summary"] == first["summary"]
    assert {k: v["baselines"] for k, v in second["variants"].items()} == \
        {k: v["baselines"] for k, v in first["variants"].items()}

    # Other prompts (another count) are another key: not read from the files above.
    monkeypatch.undo()
    evaluate_run(run, folder, tmp_path / "c.json", progress=False, baseline_cache=cache, prompts=64)
    assert len(sorted(cache.glob("*.pt"))) == 2 * len(files)


def test_an_unwritable_baseline_cache_warns_and_the_evaluation_goes_on(trained, tmp_path, capsys):
    run, folder = trained
    blocked = tmp_path / "a-file"
    blocked.write_text("not a folder")   # the cache folder cannot be made under a file
    result = evaluate_run(run, folder, tmp_path / "eval.json", progress=False,
                          baseline_cache=blocked / "baselines")
    assert result["state"] == "done" and result["baselines"]
    assert "warning: baseline cache" in capsys.readouterr().err


def test_capped_baselines_record_their_prompt_count(tmp_path, make_run):
    run = dataclasses.replace(make_run(steps=2), task_config={"kind": "decision_tree", "dims": 3, "points": 6,
                                                              "depth": 2, "curriculum": {}})
    run.eval.update(prompts=40, batch=16, bootstrap=50, baselines=["zero", "tree_depth_4"])
    train_run(run, tmp_path, progress=False)
    from icl.evaluation.baselines import BASELINES
    monkey = copy.copy(BASELINES["tree_depth_4"])
    object.__setattr__(monkey, "max_prompts", 20)
    BASELINES["tree_depth_4"], saved = monkey, BASELINES["tree_depth_4"]
    try:
        result = evaluate_run(run, tmp_path, tmp_path / "eval.json", progress=False)
    finally:
        BASELINES["tree_depth_4"] = saved
    assert result["baselines"]["zero"]["prompts"] == 40
    assert result["baselines"]["tree_depth_4"]["prompts"] == 20


def test_mqar_variants(tmp_path, make_run):
    run = dataclasses.replace(make_run(steps=2), task_config={"kind": "vector_mqar", "dims": 4, "pairs": 4,
                                                              "curriculum": {}})
    run.eval.update(prompts=64, batch=32, bootstrap=50, variants=["noisy_query", "query_position"],
                       noise_sigmas=[0.1, 5.0])
    train_run(run, tmp_path, progress=False)
    result = evaluate_run(run, tmp_path, tmp_path / "eval.json", progress=False)
    assert result["positions"] == [4]  # read out once, after all 4 pairs
    assert set(result["variants"]) == {"noisy_query:0.1", "noisy_query:5", "query_position"}
    by_query = result["variants"]["query_position"]
    assert by_query["positions"] == [0, 1, 2, 3]
    assert all(v is not None for v in by_query["model"]["mean"])
    assert "nearest_value" in result
    assert result["reports_accuracy"] is True


def test_mqar_headline_is_nearest_value_exact_match_with_the_released_proxy_beside(tmp_path, make_run):
    run = dataclasses.replace(make_run(steps=2), task_config={"kind": "vector_mqar", "dims": 4, "pairs": 4,
                                                              "curriculum": {}})
    run.eval.update(prompts=64, batch=32, bootstrap=50, variants=[])
    train_run(run, tmp_path, progress=False)
    result = evaluate_run(run, tmp_path, tmp_path / "eval.json", progress=False)
    assert result["metric"].startswith("error rate (1 - accuracy of the stored value nearest")
    assert result["model"]["mean"] == result["nearest_value"]["mean"]   # the headline, old name too
    assert "released_proxy" in result and result["released_proxy"]["prompts"] == 64


# -- diverged and missing runs ---------------------------------------------------------

def test_diverged_run_gets_a_diverged_evaluation(tmp_path, make_run):
    run = make_run(lr=1e30, steps=20)
    assert train_run(run, tmp_path, progress=False)["state"] == "diverged"
    result = evaluate_run(run, tmp_path, tmp_path / "eval.json", progress=False)
    assert result["state"] == "diverged" and result["model"] is None and result["positions"] == []
    assert json.loads((tmp_path / "eval.json").read_text())["state"] == "diverged"


def test_user_errors(trained, tmp_path):
    run, folder = trained
    with pytest.raises(RunError) as error:
        evaluate_run(run, tmp_path / "nothing", tmp_path / "eval.json", progress=False)
    assert str(error.value) == (f"error: run {run.id} has no trained model at "
                                f"{tmp_path / 'nothing' / 'model.pt'}; train it first")
    bad = copy.deepcopy(run)
    bad.eval["variants"] = ["noisy_query"]
    with pytest.raises(RunError, match="has no evaluation variant 'noisy_query'"):
        evaluate_run(bad, folder, tmp_path / "eval.json", progress=False)
    bad.eval.update(variants=[], baselines=["gf2_solver"])
    with pytest.raises(RunError, match="does not apply to linear_regression"):
        evaluate_run(bad, folder, tmp_path / "eval.json", progress=False)
    assert not (tmp_path / "eval.json").exists()


# -- learning --------------------------------------------------------------------------

def test_small_model_learns_linear_regression_in_context(tmp_path, make_run):
    """4 attention layers of width 32 beat the averaging estimator at late positions after
    1200 steps on 5-dim prompts (a short Garg-style curriculum gets it off the plateau)."""
    run = make_run(steps=1200, batch=128, lr=2e-3, checkpoint_every=10_000, log_every=100)
    run.model_config.update(layers="A A A A", width=32, dropout=0.0)
    run.task_config["curriculum"] = {"dims": {"start": 2, "end": 5, "inc": 1, "interval": 200},
                                       "points": {"start": 5, "end": 11, "inc": 2, "interval": 200}}
    run.eval.update(prompts=512, batch=256, baselines=["averaging", "zero"])
    assert train_run(run, tmp_path, progress=False)["state"] == "done"
    result = evaluate_run(run, tmp_path, tmp_path / "eval.json", progress=False)
    summary = result["summary"]
    averaging = summary["baselines_tail"]["averaging"]
    assert summary["model_tail"] < 0.85 * averaging, summary
    # and the whole band, not just the mean, sits below the averaging curve at the last position
    assert result["model"]["hi"][-1] < result["baselines"]["averaging"]["lo"][-1]
    assert make_task(run.task_config).metric_name == result["metric"]


# -- length generalisation ---------------------------------------------------------------

def test_longer_words_run_past_the_trained_length_or_say_why_not(tmp_path, write_spec):
    """word_problem's `longer_words` variant scores words 4x the trained length: a Mamba model
    reads them (its curve has 4x the positions); a Transformer with a learned position table
    of the trained length cannot, and its evaluation says so instead of failing."""
    from icl.compiler.runs import runs_of

    spec = write_spec("words.icl", '''
model mamba { layers = "M" width = 16 d_state = 4 }
model transformer { layers = "A F" width = 16 heads = 2 positions = learned }
task words { kind = word_problem group = S3 points = 8 }
experiment e {
  models = [mamba, transformer]
  tasks = [words]
  train { steps = 4 batch = 8 checkpoint_every = 4 log_every = 2 }
  eval { prompts = 32 batch = 16 bootstrap = 50 variants = [longer_words] }
}
''')
    results = {}
    for run in runs_of([spec]):
        train_run(run, tmp_path / run.id, progress=False)
        results[run.model] = evaluate_run(run, tmp_path / run.id, tmp_path / f"{run.id}.json", progress=False)
    mamba, transformer = results["mamba"], results["transformer"]
    assert len(mamba["positions"]) == 8 and len(mamba["variants"]["longer_words"]["positions"]) == 32
    assert "variants_skipped" not in mamba
    assert transformer["variants"] == {}
    assert transformer["variants_skipped"] == {
        "longer_words": "prompts of 32 tokens, 4x the trained length; the model's learned position "
                        "table has 8 rows"}
    assert json.loads((tmp_path / f"{transformer['run_id']}.json").read_text())["variants_skipped"]


def test_token_mqar_summary_averages_every_query_and_the_others_their_last_quarter(tmp_path, write_spec):
    """Token MQAR's Table-1 number is its error over every query position (zoology's accuracy:
    a late query has not seen more examples); a word problem keeps the last quarter."""
    from icl.compiler.runs import runs_of

    spec = write_spec("recall.icl", '''
model transformer { layers = "A F" width = 16 heads = 2 positions = learned }
task recall { kind = token_mqar vocab = 32 seq_len = 24 pairs = 3 }
task words { kind = word_problem group = S3 points = 8 }
experiment e {
  models = [transformer]
  tasks = [recall, words]
  train { steps = 4 batch = 8 checkpoint_every = 4 log_every = 2 }
  eval { prompts = 32 batch = 16 bootstrap = 50 }
}
''')
    for run in runs_of([spec]):
        train_run(run, tmp_path / run.id, progress=False)
        result = evaluate_run(run, tmp_path / run.id, tmp_path / f"{run.id}.json", progress=False)
        values = [v for v in result["model"]["mean"] if v is not None]
        summary = result["summary"]
        if run.task == "recall":
            # queries sit in the slots after the 2 x 3 pair tokens: several positions with a value
            assert len(values) > 4 and summary["tail_fraction"] == 1.0
            assert summary["model_tail"] == pytest.approx(sum(values) / len(values))
        else:
            assert len(values) == 8 and summary["tail_fraction"] == 0.25
            assert summary["model_tail"] == pytest.approx(sum(values[-2:]) / 2)
        assert 0 <= result["validation"]["model_tail"] <= 1
