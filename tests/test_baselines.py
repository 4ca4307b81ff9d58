"""Classical baselines on the tasks' own prompts (evaluation/baselines.py; which apply to a task
is its catalog entry's, tasks/catalog.py)."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from icl.evaluation.baselines import (BASELINES, applicable, check_baseline, gf2_parity, lasso,
                                      least_squares, neural_net_gd)
from icl.tasks import make_task
from icl.tasks.catalog import TASKS, baseline_names


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def sample(kind, batch, seed=0, **sizes):
    t = make_task({"kind": kind})
    return t, t.sample(gen(seed), batch, **sizes)


def late_error(t, p, pred, start):
    return t.error(pred, p)[:, start:].nanmean().item()


def kinds_of(name: str) -> list[str]:
    """The task kinds whose catalog entry lists baseline `name`."""
    return [kind for kind, entry in TASKS.items() if name in entry.applicable_baselines]


def test_the_catalog_names_exactly_the_implemented_baselines():
    assert list(baseline_names()) == list(BASELINES)


def test_every_kind_has_a_default_list_of_applicable_baselines():
    for kind in TASKS:
        for name in applicable(kind):
            assert name in BASELINES
            check_baseline(name, kind)
    assert applicable("token_mqar") == []
    assert "gf2_solver" in applicable("sparse_parity")
    assert applicable("orthogonal_outlier_regression") == ["zero", "least_squares"]
    # Garg et al.'s defaults; Lasso applies to dense linear regression only when named
    assert applicable("linear_regression") == ["zero", "least_squares", "knn_3", "averaging"]
    check_baseline("lasso_0.1", "linear_regression")
    assert kinds_of("lasso_0.1") == ["linear_regression", "sparse_linear_regression"]
    assert kinds_of("zero") == [k for k, t in TASKS.items() if t.out != "tokens"]
    with pytest.raises(ValueError, match="unknown task kind"):
        applicable("nope")
    with pytest.raises(ValueError, match="does not apply to linear_regression; it applies to sparse_parity"):
        check_baseline("gf2_solver", "linear_regression")
    with pytest.raises(ValueError, match="unknown baseline"):
        check_baseline("catboost", "decision_tree")


FAST = ["zero", "least_squares", "knn_3", "averaging", "lasso_0.1", "gf2_solver"]


@pytest.mark.parametrize("name", FAST)
def test_fast_baselines_shape_and_zero_at_first_position(name):
    for kind in kinds_of(name):
        sizes = {"points": 12} if kind not in ("vector_mqar",) else {}
        if kind == "chain_of_thought":
            sizes = {"points": 6}
        t, p = sample(kind, 4, **sizes)
        pred = BASELINES[name].predict(p)
        assert pred.shape == p.targets.shape and pred.dtype == torch.float32
        assert pred[:, 0].abs().max() == 0
        assert torch.isfinite(pred).all()
        assert t.error(pred, p).shape == p.mask.shape


def test_baselines_need_xs_and_ys():
    _, p = sample("vector_mqar", 2)
    with pytest.raises(ValueError, match="needs prompts with xs"):
        BASELINES["least_squares"].predict(p)


def test_max_prompts_predicts_the_first_prompts_only():
    _, p = sample("linear_regression", 6, points=8)
    full = BASELINES["least_squares"].predict(p)
    few = BASELINES["least_squares"].predict(p, max_prompts=2)
    assert few.shape[0] == 2 and torch.allclose(few, full[:2])


def test_zero_predictor_scores_about_one():
    t, p = sample("linear_regression", 512)
    assert abs(t.error(BASELINES["zero"].predict(p), p).nanmean().item() - 1) < 0.1


@pytest.mark.parametrize("dims,points", [(5, 11), (20, 41)])
def test_least_squares_is_exact_once_points_exceed_dims(dims, points):
    t, p = sample("linear_regression", 64, dims=dims, points=points)
    pred = least_squares(p)
    assert late_error(t, p, pred, dims + 1) < 1e-8
    assert t.error(pred, p)[:, 1:dims].nanmean().item() > 0.05     # underdetermined before


def test_least_squares_is_the_minimum_norm_solution():
    _, p = sample("linear_regression", 4, dims=8, points=12)
    pred = least_squares(p)[..., 0].numpy()
    xs, ys = p.xs.double().numpy(), p.ys.double().numpy()
    for b in range(4):
        for i in range(1, 12):
            w = np.linalg.lstsq(xs[b, :i], ys[b, :i], rcond=None)[0]
            assert abs(pred[b, i] - xs[b, i] @ w) < 1e-6


def test_nearest_neighbours_and_averaging_beat_zero_late():
    t, p = sample("linear_regression", 256, dims=5, points=41)
    zero = late_error(t, p, BASELINES["zero"].predict(p), 30)
    for name in ("knn_3", "averaging"):
        assert late_error(t, p, BASELINES[name].predict(p), 30) < 0.8 * zero, name


def test_nearest_neighbours_average_the_three_closest_earlier_ys():
    _, p = sample("relu_2nn_regression", 2, points=10)
    pred = BASELINES["knn_3"].predict(p)[..., 0]
    b, i = 1, 7
    dist = (p.xs[b, :i] - p.xs[b, i]).norm(dim=-1)
    expect = p.ys[b, :i][dist.argsort()[:3]].mean()
    assert torch.allclose(pred[b, i], expect, atol=1e-5)
    assert torch.allclose(pred[b, 1], p.ys[b, 0])                   # one neighbour available


def test_lasso_matches_scikit_learn():
    from sklearn.linear_model import Lasso
    _, p = sample("sparse_linear_regression", 3, dims=10, points=14)
    pred = lasso(p, 0.1)[..., 0].numpy()
    xs, ys = p.xs.double().numpy(), p.ys.double().numpy()
    for b in range(3):
        for i in (2, 7, 13):
            model = Lasso(alpha=0.1, fit_intercept=False, tol=1e-12, max_iter=100_000)
            model.fit(xs[b, :i], ys[b, :i])
            assert abs(pred[b, i] - model.predict(xs[b, i:i + 1])[0]) < 1e-4


def test_lasso_recovers_sparse_w_before_least_squares_does():
    t, p = sample("sparse_linear_regression", 32, dims=20, points=16)
    las = late_error(t, p, lasso(p, 0.01), 12)
    ls = late_error(t, p, least_squares(p), 12)
    assert las < 0.1 and las < 0.5 * ls


def test_gf2_solver_is_perfect_once_determined():
    t, p = sample("sparse_parity", 64)
    pred = gf2_parity(p)
    err = t.error(pred, p)
    assert err[:, 30:].max() == 0                                   # 10 bits: determined well before
    decided = pred[..., 0] != 0
    assert bool((pred[..., 0][decided] == p.ys[decided]).all())       # never wrong when it answers
    assert not decided[:, 0].any() and err[:, :3].mean() > 0.2       # undetermined at first


def test_gf2_solver_with_curriculum_dims():
    t, p = sample("sparse_parity", 16, dims=6, points=30)
    assert t.error(gf2_parity(p), p)[:, 20:].max() == 0


def test_neural_net_learns_in_context():
    t, p = sample("linear_regression", 4, dims=3, points=20)
    pred = neural_net_gd(p, steps=60)
    assert pred.shape == (4, 20, 1) and pred[:, 0].abs().max() == 0
    zero = late_error(t, p, torch.zeros_like(pred), 12)
    assert late_error(t, p, pred, 12) < 0.5 * zero


def test_trees_and_boosting_on_decision_tree_prompts():
    from sklearn.tree import DecisionTreeRegressor
    t, p = sample("decision_tree", 8, dims=3, points=30)
    pred = BASELINES["tree_depth_4"].predict(p)
    b, i = 2, 17
    ref = DecisionTreeRegressor(max_depth=4, random_state=0).fit(
        p.xs[b, :i].double().numpy(), p.ys[b, :i].double().numpy())
    assert abs(pred[b, i, 0].item() - ref.predict(p.xs[b, i:i + 1].double().numpy())[0]) < 1e-6
    zero = late_error(t, p, torch.zeros_like(pred), 20)
    assert late_error(t, p, pred, 20) < zero
    assert late_error(t, p, BASELINES["tree_unlimited"].predict(p), 20) < zero
    boosted = BASELINES["gradient_boosting"].predict(p, max_prompts=1)[:, :8]
    assert boosted.shape == (1, 8, 1) and boosted[0, 0] == 0 and torch.isfinite(boosted).all()


def test_xgboost_is_the_decision_tree_baseline_and_beats_the_zero_predictor():
    pytest.importorskip("xgboost", reason="the baselines extra (xgboost-cpu) is not installed")
    from xgboost import XGBRegressor
    assert "xgboost" in applicable("decision_tree")
    t, p = sample("decision_tree", 4, dims=3, points=30)
    pred = BASELINES["xgboost"].predict(p)
    b, i = 1, 21
    ref = XGBRegressor(n_jobs=1, random_state=0).fit(p.xs[b, :i].double().numpy(), p.ys[b, :i].double().numpy())
    assert abs(pred[b, i, 0].item() - float(ref.predict(p.xs[b, i:i + 1].double().numpy())[0])) < 1e-5
    assert late_error(t, p, pred, 20) < late_error(t, p, torch.zeros_like(pred), 20)


def test_a_baseline_whose_package_is_missing_gives_way_to_its_fallback(monkeypatch):
    import importlib.util

    from icl.evaluation import baselines
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "xgboost" else real(name, *a))
    monkeypatch.setattr(baselines, "_warned", set())
    with pytest.warns(UserWarning, match="xgboost package is not installed; gradient_boosting stands in"):
        names = applicable("decision_tree")
    assert names[-1] == "gradient_boosting" and "xgboost" not in names


def test_least_squares_on_outlier_prompts_sees_the_outliers():
    t, p = sample("many_outlier_regression", 32, dims=5, points=40)
    clean = t.sample(gen(), 32, dims=5, points=40, variant="no_outliers")
    corrupted = late_error(t, p, least_squares(p), 30)
    assert late_error(t, clean, least_squares(clean), 30) < 1e-8 < corrupted
