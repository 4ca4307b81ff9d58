"""Statistics, shapes and determinism of every task sampler (tasks/)."""
from __future__ import annotations

import math

import pytest
import torch

from icl.tasks import Prompts, make_task
from icl.tasks.catalog import TASKS
from icl.tasks.outliers import fixed_outlier_positions

KINDS = list(TASKS)
NORMALISED = ["linear_regression", "sparse_linear_regression", "relu_2nn_regression",
              "decision_tree", "orthogonal_outlier_regression", "many_outlier_regression",
              "chain_of_thought"]
# full sizes are large for some kinds; these keep the suite fast
SMALL = {"many_outlier_regression": {"points": 64}, "sparse_parity": {"points": 40},
         "vector_mqar": {"pairs": 16}, "relu_2nn_regression": {"points": 41},
         "decision_tree": {"points": 41}, "orthogonal_outlier_regression": {"points": 41},
         "chain_of_thought": {"points": 31}}


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def task(kind: str, **overrides):
    return make_task({"kind": kind, **SMALL.get(kind, {}), **overrides})


def float_pred(prompts: Prompts) -> torch.Tensor:
    return torch.zeros(prompts.targets.shape)


def tensors(p: Prompts):
    return [p.inputs, p.targets, p.mask, p.readout] + [t for t in (p.xs, p.ys) if t is not None]


# -- shapes, determinism, sanity ------------------------------------------------

@pytest.mark.parametrize("kind", KINDS)
def test_shapes_match_layout(kind):
    t = task(kind)
    layout = t.layout
    p = t.sample(gen(), 3)
    B = 3
    if layout.vocab:
        assert p.inputs.shape == (B, layout.tokens) and p.inputs.dtype == torch.int64
        assert p.targets.shape == (B, p.readout.shape[0]) and p.targets.dtype == torch.int64
        assert int(p.inputs.max()) < layout.vocab
    else:
        assert p.inputs.shape == (B, layout.tokens, layout.token_dim)
        assert p.inputs.dtype == torch.float32 and p.targets.dtype == torch.float32
        assert p.targets.shape == (B, p.readout.shape[0], layout.out_dim)
    P = p.readout.shape[0]
    assert p.mask.shape == (B, P) and p.mask.dtype == torch.bool
    assert p.readout.dtype == torch.int64 and int(p.readout.max()) < layout.tokens
    assert bool((p.readout[1:] > p.readout[:-1]).all())
    if p.xs is not None:
        assert p.xs.shape[:2] == (B, P) and p.ys.shape == (B, P)
    for x in tensors(p):
        if x.is_floating_point():
            assert not torch.isnan(x).any()
    err = t.error(float_pred(p) if not layout.vocab else torch.zeros(B, P, layout.vocab), p)
    assert err.shape == (B, P)


@pytest.mark.parametrize("kind", KINDS)
def test_same_seed_same_prompts_different_seed_different(kind):
    t = task(kind)
    variants = (None,) + t.variants
    for variant in variants:
        a, b, c = (t.sample(gen(s), 4, variant=variant) for s in (7, 7, 8))
        for x, y in zip(tensors(a), tensors(b)):
            assert torch.equal(x, y), variant
        assert not torch.equal(a.inputs, c.inputs), variant


@pytest.mark.parametrize("kind", [k for k in KINDS if TASKS[k].curriculum])
def test_curriculum_sizes_zero_inactive_coordinates(kind):
    t = task(kind)
    start = {axis: TASKS[kind].curriculum[axis].start for axis in TASKS[kind].curriculum}
    p = t.sample(gen(), 8, dims=start["dims"], points=start["points"])
    per_point = TASKS[kind].tokens_per_point
    assert p.inputs.shape[1] == per_point * start["points"]
    x_tokens = p.inputs[:, 0::per_point]
    assert x_tokens[..., start["dims"]:].abs().max() == 0      # inactive coordinates are zero
    assert x_tokens[..., :start["dims"]].abs().min(dim=1).values.max() > 0


@pytest.mark.parametrize("kind", KINDS)
def test_bad_sizes_and_variants_are_clear_errors(kind):
    t = task(kind)
    with pytest.raises(ValueError, match="points"):
        t.sample(gen(), 2, points=10**6)
    with pytest.raises(ValueError, match="unknown variant"):
        t.sample(gen(), 2, variant="no_such_variant")


def test_make_task_rejects_unknown_kind():
    with pytest.raises(ValueError, match="unknown task kind"):
        make_task({"kind": "linear_regresion"})


def test_samplers_never_read_tensors_back_to_python(monkeypatch):
    """A cheap CPU proxy for 'no host synchronisation': no .item(), bool(), int(), tolist()."""
    def forbidden(*args, **kwargs):
        raise AssertionError("sampler read a tensor value on the host")
    tasks = {kind: task(kind) for kind in KINDS}
    for name in ("item", "tolist", "__bool__", "__int__", "__float__", "numpy"):
        monkeypatch.setattr(torch.Tensor, name, forbidden)
    for kind, t in tasks.items():
        for variant in (None,) + t.variants:
            t.sample(gen(), 4, variant=variant)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_samplers_do_not_synchronise_on_cuda():
    tasks = {kind: task(kind) for kind in KINDS}
    g = torch.Generator(device="cuda").manual_seed(0)
    for t in tasks.values():            # warm up (first calls may initialise libraries)
        t.sample(g, 4)
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        for kind, t in tasks.items():
            for variant in (None,) + t.variants:
                p = t.sample(g, 4, variant=variant)
                assert p.inputs.device.type == "cuda"
    finally:
        torch.cuda.set_sync_debug_mode("default")


# -- metric normalisation and losses ---------------------------------------------

@pytest.mark.parametrize("kind", NORMALISED)
@pytest.mark.parametrize("stage", ["start", "end"])
def test_zero_predictor_scores_about_one(kind, stage):
    t = task(kind)
    dims = TASKS[kind].curriculum["dims"].start if stage == "start" else None
    p = t.sample(gen(), 1024, dims=dims)
    score = t.error(float_pred(p), p).nanmean().item()
    assert abs(score - 1.0) < 0.1, score


@pytest.mark.parametrize("kind", KINDS)
def test_loss_is_a_differentiable_scalar_ignoring_masked_positions(kind):
    t = task(kind)
    p = t.sample(gen(), 6)
    shape = (6, p.readout.shape[0], t.layout.vocab) if t.layout.vocab else p.targets.shape
    pred = torch.randn(shape, generator=gen(1), requires_grad=True)
    loss = t.loss(pred, p)
    assert loss.dim() == 0 and torch.isfinite(loss)
    loss.backward()
    # changing predictions where mask is False leaves loss and metric unchanged
    changed = pred.detach() + 5.0 * (~p.mask).unsqueeze(-1).float()
    assert torch.allclose(t.loss(changed, p), loss.detach())
    assert torch.equal(torch.isnan(t.error(changed, p)), ~p.mask)


def test_regression_loss_and_error_values():
    t = task("linear_regression")
    p = t.sample(gen(), 16, dims=8, points=11)
    pred = p.targets + 2.0
    assert torch.allclose(t.loss(pred, p), torch.tensor(4.0))
    assert torch.allclose(t.error(pred, p), torch.full((16, 11), 4.0 / 8))


# -- per-task statistics ---------------------------------------------------------

def test_linear_targets_are_w_dot_x_read_at_x_tokens():
    t = task("linear_regression")
    p = t.sample(gen(), 4, dims=6, points=9)
    w = p.info["w"]
    assert torch.allclose(p.ys, torch.einsum("bnd,bd->bn", p.xs, w), atol=1e-5)
    assert torch.equal(p.inputs[:, p.readout], p.xs)                 # read at x_i
    assert torch.equal(p.inputs[:, 1::2, 0], p.ys)                   # y token = (y, 0, ...)
    assert p.inputs[:, 1::2, 1:].abs().max() == 0
    assert w[:, 6:].abs().max() == 0


def test_linear_noise_is_added_to_y():
    t = task("linear_regression", noise=0.5)
    p = t.sample(gen(), 512)
    resid = p.ys - torch.einsum("bnd,bd->bn", p.xs, p.info["w"])
    assert abs(resid.std().item() - 0.5) < 0.02


def test_sparse_w_has_k_nonzeros_among_active_dims():
    t = task("sparse_linear_regression", k=3)
    for dims in (3, 5, 12):
        w = t.sample(gen(dims), 256, dims=dims, points=11).info["w"]
        assert bool(((w != 0).sum(1) == 3).all())
        assert w[:, dims:].abs().max() == 0
    # the support is drawn per prompt and covers every active coordinate
    w = t.sample(gen(), 256, dims=5, points=11).info["w"]
    assert bool((w[:, :5] != 0).any(0).all())
    assert len({tuple(row.tolist()) for row in (w != 0)}) > 5
    with pytest.raises(ValueError, match="k=4"):
        task("sparse_linear_regression", k=4).sample(gen(), 2, dims=3, points=11)


def test_relu_2nn_scale():
    t = task("relu_2nn_regression")
    p = t.sample(gen(), 1024)
    assert abs(p.ys.pow(2).mean().item() / 20 - 1.0) < 0.1


def test_decision_tree_splits_on_active_coordinates_and_outputs_leaves():
    t = task("decision_tree")
    p = t.sample(gen(), 64, dims=5, points=41)
    assert int(p.info["split"].max()) < 5
    leaves = p.info["leaves"]
    # every y is one of the prompt's 16 leaf values
    assert bool((p.ys.unsqueeze(-1) == leaves.unsqueeze(1)).any(-1).all())
    # re-derive the leaf of one example by walking the tree by hand
    b, i = 3, 7
    node = 0
    for _ in range(4):
        coord = int(p.info["split"][b, node])
        node = 2 * node + (2 if p.xs[b, i, coord] > 0 else 1)
    assert p.ys[b, i] == leaves[b, node - 15]


@pytest.mark.parametrize("kind,rate", [("orthogonal_outlier_regression", 0.5),
                                       ("many_outlier_regression", 0.9)])
def test_outlier_rate_and_masks(kind, rate):
    t = task(kind)
    p = t.sample(gen(), 512)
    outlier = p.info["outlier"]
    assert torch.equal(p.mask, ~outlier)
    assert abs(outlier.float().mean().item() - rate) < 0.01
    # clean positions keep y = w.x, and baselines see the same x and y there
    clean_y = torch.einsum("bnd,bd->bn", p.xs, p.info["w"])
    assert torch.allclose(p.targets[..., 0][p.mask], clean_y[p.mask], atol=1e-4)
    assert torch.equal(p.ys[p.mask], p.targets[..., 0][p.mask])
    none = t.sample(gen(), 64, variant="no_outliers")
    assert bool(none.mask.all())
    fixed = t.sample(gen(), 64, variant="fixed_outliers")
    assert bool((fixed.info["outlier"] == fixed.info["outlier"][0]).all())
    assert abs(fixed.info["outlier"][0].float().mean().item() - rate) < 0.03


def test_fixed_outliers_are_evenly_spaced():
    # the released evaluation's layout at p = 0.5: outliers at 2, 4, 6, ..., position 0 clean
    assert fixed_outlier_positions(6, 0.5, "cpu").tolist() == [False, False, True, False, True, False]
    half = fixed_outlier_positions(101, 0.5, "cpu")
    assert half.nonzero().flatten().tolist() == list(range(2, 101, 2))
    # p = 0.9: one clean position in ten, at 10, 20, ... (the released code's outliers would sit
    # at 0..9 only); 1 - 0.9 is not 0.1 in floating point, the spacing still is
    nine = fixed_outlier_positions(512, 0.9, "cpu")
    assert (~nine).nonzero().flatten().tolist() == list(range(10, 512, 10))
    assert not fixed_outlier_positions(5, 0.0, "cpu").any()
    assert fixed_outlier_positions(5, 1.0, "cpu").all()


def test_fixed_outliers_variant_uses_the_released_positions():
    p = task("orthogonal_outlier_regression").sample(gen(), 4, variant="fixed_outliers")
    assert p.info["outlier"][0].nonzero().flatten().tolist() == list(range(2, 41, 2))
    assert torch.equal(p.mask, ~p.info["outlier"])


def test_orthogonal_outliers_are_orthogonal_to_the_prompts_own_w():
    t = task("orthogonal_outlier_regression")
    p = t.sample(gen(), 64, dims=7, points=41)
    w, outlier = p.info["w"], p.info["outlier"]
    x_tokens, y_tokens = p.inputs[:, 0::2], p.inputs[:, 1::2]
    for tokens in (x_tokens, y_tokens):
        dots = torch.einsum("bnd,bd->bn", tokens, w) / tokens.norm(dim=-1) / w.norm(dim=-1, keepdim=True)
        assert dots[outlier].abs().max() < 1e-5
        assert tokens[outlier][:, 7:].abs().max() == 0           # confined to active dims
        assert tokens[outlier].norm(dim=-1).min() > 0
    # fresh vectors at every outlier position (the released code repeats one)
    b = int(outlier.sum(1).argmax())
    vectors = x_tokens[b][outlier[b]]
    assert torch.unique(vectors, dim=0).shape[0] == vectors.shape[0]
    # the outlier y token is a full vector, not a padded scalar
    assert y_tokens[outlier][:, 1:7].abs().max() > 0


def test_many_outliers_are_all_ones_with_y_one():
    t = task("many_outlier_regression")
    p = t.sample(gen(), 16, dims=6, points=32)
    outlier = p.info["outlier"]
    x_out = p.inputs[:, 0::2][outlier]
    assert bool((x_out[:, :6] == 1).all()) and x_out[:, 6:].abs().max() == 0
    y_out = p.inputs[:, 1::2][outlier]
    assert bool((y_out[:, 0] == 1).all()) and y_out[:, 1:].abs().max() == 0
    assert bool((p.ys[outlier] == 1).all())


def test_parity_labels_balanced_and_per_prompt_subsets():
    t = task("sparse_parity")
    p = t.sample(gen(), 512)
    assert set(torch.unique(p.xs).tolist()) == {-1.0, 1.0}
    assert set(torch.unique(p.ys).tolist()) == {-1.0, 1.0}
    assert abs(p.ys.mean().item()) < 0.02
    subset = p.info["subset"]
    for b in range(5):
        i, j = subset[b].tolist()
        assert torch.equal(p.ys[b], p.xs[b, :, i] * p.xs[b, :, j])
    distinct = {tuple(sorted(s)) for s in subset.tolist()}
    assert len(distinct) == math.comb(10, 2)                       # one subset per prompt
    assert bool((subset[:, 0] != subset[:, 1]).all())


def test_parity_loss_is_bce_and_error_is_sign_error():
    t = task("sparse_parity")
    p = t.sample(gen(), 64)
    zero = torch.zeros(p.targets.shape)
    assert torch.allclose(t.loss(zero, p), torch.tensor(math.log(2.0)))
    assert t.error(3.0 * p.targets, p).max() == 0
    assert t.error(-3.0 * p.targets, p).min() == 1
    assert abs(t.error(zero, p).mean().item() - 0.5) < 0.05      # ties go to +1: chance level
    assert t.reports_accuracy


def test_chain_of_thought_layout_and_features():
    t = task("chain_of_thought")
    p = t.sample(gen(), 8, dims=7, points=5)
    d, k = 10, 4
    x, s_tok, y_tok = p.inputs[:, 0::3], p.inputs[:, 1::3], p.inputs[:, 2::3]
    s = torch.relu(x @ p.info["w"]) * math.sqrt(2 / k)
    assert torch.allclose(s_tok[..., :k], s, atol=1e-5)
    assert torch.allclose(y_tok[..., 0], (s * p.info["v"][:, None]).sum(-1), atol=1e-5)
    assert p.readout.tolist() == [0, 1, 3, 4, 6, 7, 9, 10, 12, 13]
    assert torch.allclose(p.targets[:, 0::2], s) and torch.equal(p.targets[:, 1::2, 0], y_tok[..., 0])
    # loss = ||s err||^2 + (y err)^2 per example; the spare read-out coordinates do not count
    pred = p.targets.clone()
    pred[:, 1::2, 1:] = 100.0
    assert t.loss(pred, p) == 0
    pred[:, 0::2] += 1.0                                            # each s coordinate off by 1
    pred[:, 1::2, 0] += 2.0
    assert torch.allclose(t.loss(pred, p), torch.tensor(k * 1.0 + 4.0))
    assert t.output_error(pred, p).shape == (8, 5)
    assert x.shape[-1] == max(d, k)


def _cot_stand_in(p: Prompts, s_offset: float):
    """A causal stand-in model for chain_of_thought prompts: at each x token it predicts the
    true s plus `s_offset` times v (so a wrong s always moves y), at each s token it outputs the y that the s token it reads implies
    (y = s . v, the prompt's own v): exact when fed the true s, wrong when fed a wrong one."""
    k = p.targets.shape[-1]
    s_true = p.targets[:, 0::2]

    def model(inputs):
        out = torch.zeros(inputs.shape[0], inputs.shape[1], k)
        for t in range(inputs.shape[1]):
            if t % 3 == 0:
                out[:, t] = s_true[:, t // 3] + s_offset * p.info["v"]
            elif t % 3 == 1:
                out[:, t, 0] = (inputs[:, t, :k] * p.info["v"]).sum(-1)
        return out
    return model


def test_chain_of_thought_evaluation_feeds_the_models_own_s():
    t = task("chain_of_thought")
    p = t.sample(gen(3), 6, dims=7, points=5)
    wrong = t.predict(_cot_stand_in(p, s_offset=1.0), p)
    forced = t.teacher_forced_error(wrong, p)
    # teacher forced, the stand-in's y is exact; with its own (wrong) s, y is off
    assert torch.allclose(forced[:, 1::2], torch.zeros(6, 5), atol=1e-6)
    assert (t.error(wrong, p)[:, 1::2] > 1e-3).all()
    assert torch.equal(t.error(wrong, p)[:, 0::2], forced[:, 0::2])      # the s read-outs: one pass
    # substituted one query at a time: y_i is what the model's s_hat_i implies, nothing else
    s_hat = p.targets[:, 0::2] + p.info["v"][:, None]
    assert torch.allclose(wrong[:, 1::2, 0], (s_hat * p.info["v"][:, None]).sum(-1), atol=1e-5)
    # a model whose s is right scores the same either way
    right = t.predict(_cot_stand_in(p, s_offset=0.0), p)
    assert torch.allclose(t.error(right, p), t.teacher_forced_error(right, p), atol=1e-6)


def test_parity_released_sign_metric_counts_zero_wrong():
    t = task("sparse_parity")
    p = t.sample(gen(), 64)
    zero = torch.zeros(p.targets.shape)
    labels = p.targets[..., 0]
    # the headline error breaks a tie to +1; the released rule (torch.sign(0) = 0) never matches
    assert torch.equal(t.error(zero, p), (labels != 1).float())
    assert t.released_sign_error(zero, p).min() == 1
    # away from zero both agree
    pred = torch.randn(p.targets.shape, generator=gen(3)) + 1e-3
    pred[pred == 0] = 1e-3
    assert torch.equal(t.error(pred, p), t.released_sign_error(pred, p))
    assert "released_sign" in TASKS["sparse_parity"].metrics
    assert TASKS["sparse_parity"].chance({}) == 0.5


def test_vector_mqar_error_is_exact_match_of_the_nearest_value():
    t = task("vector_mqar", dims=8, pairs=4)
    p = t.sample(gen(), 512)
    _, values = t.keys_values(p)
    rows, target = torch.arange(512), p.info["target_index"]
    assert t.error(p.targets, p).max() == 0                          # the target value: right
    assert t.error(p.targets + 0.1 * torch.randn(p.targets.shape, generator=gen(1)), p).max() == 0
    for shift in (1, 2, 3):                                          # another stored value: wrong
        other = values[rows, (target + shift) % 4].unsqueeze(1)
        assert t.error(other, p).min() == 1
        # the released proxy scores some of those right (where the most aligned keys coincide)
        assert t.released_proxy_error(other, p).min() == 0
    assert torch.equal(t.nearest_value_error(other, p), t.error(other, p))
    kind = TASKS["vector_mqar"]
    assert kind.chance(kind.with_defaults({})) == 1 - 1 / 64                 # accuracy 1/pairs
    assert kind.chance({"dims": 8, "pairs": 4}) == 0.75
    assert "released_proxy" in kind.metrics and "nearest_value" in kind.metrics
    # a guess among the stored values at random scores about chance
    guess = values[rows, torch.randint(0, 4, (512,), generator=gen(2))].unsqueeze(1)
    assert abs(t.error(guess, p).mean().item() - 0.75) < 0.06


def test_vector_mqar_noisy_query_is_renormalised():
    t = task("vector_mqar")
    for sigma in (0.1, 1.0, 5.0):
        p = t.sample(gen(), 64, variant=f"noisy_query:{sigma}")
        assert torch.allclose(p.inputs[:, -1].norm(dim=-1), torch.full((64,), math.sqrt(20)))
    # the same prompts as the unnoised ones up to the query: the noise moved q's direction only
    p = t.sample(gen(), 64, variant="noisy_query:0.5")
    keys, _ = t.keys_values(p)
    cosine = torch.nn.functional.cosine_similarity(p.inputs[:, -1], keys[torch.arange(64), p.info["query_index"]])
    assert 0.8 < cosine.mean().item() < 0.95                         # 1 / sqrt(1 + 0.25) ~ 0.89


def test_vector_mqar_target_is_the_value_of_the_matching_key():
    t = task("vector_mqar")
    p = t.sample(gen(), 256)
    keys, values = t.keys_values(p)
    rows = torch.arange(256)
    q, idx = p.info["query_index"], p.inputs[:, -1]
    assert torch.equal(idx, keys[rows, q])                          # the query copies a key
    assert torch.equal(p.targets[:, 0], values[rows, q])
    assert torch.allclose(keys.norm(dim=-1), torch.full((256, 16), math.sqrt(20)))
    assert int(q.min()) == 0 and int(q.max()) == 15                 # every slot, never out of range
    assert p.readout.tolist() == [32] and p.targets.shape == (256, 1, 20)
    assert t.error(p.targets, p).max() == 0 and t.nearest_value_error(p.targets, p).max() == 0
    wrong = values[rows, (q + 1) % 16].unsqueeze(1)
    assert t.nearest_value_error(wrong, p).min() == 1


def test_vector_mqar_variants():
    t = task("vector_mqar")
    a = t.sample(gen(), 64, variant="noisy_query:0.5")
    b = t.sample(gen(), 64, variant="noisy_query", noise=0.5)
    assert torch.equal(a.inputs, b.inputs)
    keys, _ = t.keys_values(a)
    # noise of std 0.5 per coordinate, then q rescaled to norm sqrt(d): q = (k + n) / sqrt(1.25)
    # on average, so q - k has std about sqrt(0.106^2 + 0.894^2 0.25) = 0.46
    noise = a.inputs[:, -1] - keys[torch.arange(64), a.info["query_index"]]
    assert abs(noise.std().item() - 0.46) < 0.05
    # the target follows the key most aligned with the noisy query
    big = t.sample(gen(), 256, variant="noisy_query:5")
    assert (big.info["target_index"] != big.info["query_index"]).float().mean() > 0.5
    at = t.sample(gen(), 8, variant="query_position:3")
    assert bool((at.info["query_index"] == 3).all())
    assert torch.equal(at.info["query_index"], t.sample(gen(), 8, variant="query_position",
                                                        query_index=3).info["query_index"])
    spread = t.sample(gen(), 32, variant="query_position")
    assert spread.info["query_index"].tolist() == list(range(16)) * 2
    with pytest.raises(ValueError, match="not in"):
        t.sample(gen(), 2, variant="query_position:16")
    with pytest.raises(ValueError, match="not a number"):
        t.sample(gen(), 2, variant="noisy_query:big")


def test_linear_distribution_shifts():
    t = task("linear_regression")
    base = t.sample(gen(), 512)
    sx = t.sample(gen(), 512, variant="scaled_x:3")
    assert torch.allclose(sx.xs, 3 * base.xs)
    sy = t.sample(gen(), 512, variant="scaled_y", scale=0.5)
    assert torch.allclose(sy.ys, 0.5 * base.ys, atol=1e-5)
    skew = t.sample(gen(), 512, variant="skewed_covariance")
    assert abs(skew.xs.pow(2).sum(-1).mean().item() / 20 - 1) < 0.05
    cov = torch.einsum("bni,bnj->ij", skew.xs, skew.xs) / (512 * 41)
    assert abs(torch.trace(cov).item() / 20 - 1) < 0.05
    ortho = t.sample(gen(), 16, dims=8, points=12, variant="orthogonal_subspace")
    gram = ortho.xs[:, :8] @ ortho.xs[:, :8].transpose(1, 2)
    off = gram - torch.diag_embed(torch.diagonal(gram, dim1=1, dim2=2))
    assert off.abs().max() < 1e-4
    assert ortho.mask[:, :8].all() and not ortho.mask[:, 8:].any()
    sparse = task("sparse_linear_regression").sample(gen(), 8, variant="scaled_x:2")
    assert sparse.info["variant"] == "scaled_x"


def test_skewed_covariance_is_one_fixed_covariance_for_the_evaluation():
    t = task("linear_regression", dims=5, points=3000)

    def top_direction(xs):
        cov = xs.T @ xs / xs.shape[0]
        eigvals, eigvecs = torch.linalg.eigh(cov)
        return eigvals, eigvecs[:, -1]

    # two prompts of one chunk, and a prompt of another chunk (another generator), share S
    a = t.sample(gen(1), 2, variant="skewed_covariance")
    b = t.sample(gen(2), 1, variant="skewed_covariance")
    directions = []
    for xs in (a.xs[0, :, :5], a.xs[1, :, :5], b.xs[0, :, :5]):
        eigvals, top = top_direction(xs)
        # eigenvalues proportional to 1/i^2 with trace 5: 3.41, 0.85, 0.38, 0.21, 0.14
        assert abs(eigvals[-1].item() / 3.41 - 1) < 0.1 and abs(eigvals.sum().item() / 5 - 1) < 0.1
        directions.append(top)
    for other in directions[1:]:
        assert abs(torch.dot(directions[0], other).item()) > 0.99
    # the variant's value seeds the rotation: another seed, another covariance
    c = t.sample(gen(1), 1, variant="skewed_covariance:7")
    assert torch.equal(c.xs, t.sample(gen(1), 1, variant="skewed_covariance", rotation_seed=7).xs)
    assert abs(torch.dot(directions[0], top_direction(c.xs[0, :, :5])[1]).item()) < 0.99
    with pytest.raises(ValueError, match="not a non-negative integer"):
        t.sample(gen(), 1, variant="skewed_covariance:0.5")


@pytest.mark.parametrize("layout", ["zoology", "echo"])
def test_token_mqar_queries_recall_their_values(layout):
    t = task("token_mqar", layout=layout)
    p = t.sample(gen(), 32)
    n, V = 8, 256
    context = p.inputs[:, :2 * n]
    keys, values = context[:, 0::2], context[:, 1::2]
    assert bool((keys >= 1).all() and (keys < V // 2).all() and (values >= V // 2).all())
    assert bool((keys.sort(1).values[:, 1:] != keys.sort(1).values[:, :-1]).all())   # distinct
    repeated_value = (values.sort(1).values[:, 1:] == values.sort(1).values[:, :-1]).any(1)
    assert bool((p.mask.sum(1) == n).all()) and not p.mask[:, :2 * n].any()
    after_query = []
    for b in range(32):
        table = dict(zip(keys[b].tolist(), values[b].tolist()))
        queries = p.mask[b].nonzero().flatten().tolist()
        assert sorted(int(p.inputs[b, pos]) for pos in queries) == sorted(table)   # each key asked once
        for pos in queries:
            assert p.targets[b, pos] == table[int(p.inputs[b, pos])]
            after_query.append(bool(p.inputs[b, pos + 1] == p.targets[b, pos]))
    if layout == "echo":   # the value follows its query; other tokens are 0; values may repeat
        assert all(after_query)
        assert bool((p.inputs[:, 2 * n:][~(p.mask[:, 2 * n:] | p.mask[:, 2 * n - 1:-1])] == 0).all())
        assert bool(repeated_value.any())
    else:                  # zoology: distinct values, random filler, nothing echoed
        assert not repeated_value.any() and sum(after_query) <= 2
        assert len(set(p.inputs[:, 2 * n:][~p.mask[:, 2 * n:]].tolist())) > 100
    logits = torch.nn.functional.one_hot(p.targets, V).float() * 10
    assert t.error(logits, p).nanmean() == 0
    with pytest.raises(ValueError, match="too short"):
        make_task({"kind": "token_mqar", "pairs": 8, "seq_len": 20})
    with pytest.raises(ValueError, match="key tokens"):
        make_task({"kind": "token_mqar", "vocab": 8, "pairs": 8, "seq_len": 64})


def test_token_mqar_zoology_queries_follow_its_power_law():
    """Slot i (1-based) of the query section holds a query with weight i^(a - 1), a = 0.01,
    drawn without replacement: the first slot is asked in nearly every prompt, the last in few,
    where a uniform draw (the echo layout) asks each slot in n / slots of them."""
    seq_len, n = 64, 8
    slots = (seq_len - 2 * n) // 2
    for layout, first, last in (("zoology", (0.95, 1.0), (0.05, 0.2)), ("echo", (0.25, 0.42), (0.25, 0.42))):
        p = task("token_mqar", layout=layout, vocab=256, seq_len=seq_len, pairs=n).sample(gen(), 4000)
        asked = p.mask[:, 2 * n::2].float().mean(0)   # share of prompts with a query in each slot
        assert asked.shape == (slots,) and abs(asked.sum().item() - n) < 1e-4
        assert first[0] <= asked[0] <= first[1] and last[0] <= asked[-1] <= last[1], (layout, asked)


@pytest.mark.parametrize("group, order", [("S3", 6), ("A4", 12), ("S4", 24), ("A5", 60), ("S5", 120)])
def test_word_problem_groups_are_groups(group, order):
    from icl.tasks.word_problem import _is_even, multiplication_table, permutations_of

    table = multiplication_table(group)
    assert table.shape == (order, order) and TASKS["word_problem"].layout({"group": group, "points": 9}).vocab == order
    everything = torch.arange(order)
    assert bool((table[0] == everything).all() and (table[:, 0] == everything).all())   # 0 is the identity
    assert bool((table.sort(1).values == everything).all() and (table.sort(0).values == everything[:, None]).all())
    a, b, c = torch.randint(0, order, (3, 500), generator=torch.Generator().manual_seed(1))
    assert bool((table[table[a, b], c] == table[a, table[b, c]]).all())                  # associative
    assert all(_is_even(p) for p in permutations_of(group)) == group.startswith("A")  # A_n: even ones


def test_word_problem_targets_are_prefix_products():
    from icl.tasks.word_problem import permutations_of

    t = task("word_problem", group="S3", points=10)
    p = t.sample(gen(), 16)
    assert p.inputs.shape == p.targets.shape == (16, 10) and p.mask.all()
    elements = permutations_of("S3")
    for b in range(4):   # by hand: compose the permutations themselves, i -> g_t(s_{t-1}(i))
        state = tuple(range(3))
        for step, g in enumerate(p.inputs[b].tolist()):
            state = tuple(elements[g][state[i]] for i in range(3))
            assert elements[int(p.targets[b, step])] == state
    # a hand-made word: (0 1) then (1 2) is the 3-cycle 0 -> 2, 1 -> 0, 2 -> 1
    swap01, swap12 = elements.index((1, 0, 2)), elements.index((0, 2, 1))
    assert elements[int(t.table[swap01, swap12])] == (2, 0, 1)
    logits = torch.nn.functional.one_hot(p.targets, 6).float() * 10
    assert t.error(logits, p).nanmean() == 0 and t.error(-logits, p).nanmean() == 1
    assert TASKS["word_problem"].chance({"group": "S3", "points": 10}) == pytest.approx(5 / 6)


def test_longer_words_are_four_times_the_trained_length_with_the_same_targets():
    t = task("word_problem", group="S3", points=10)
    p = t.sample(gen(), 16, variant="longer_words")
    assert p.inputs.shape == p.targets.shape == (16, 40) and p.info["variant"] == "longer_words"
    state = p.inputs[:, 0]
    for step in range(1, 40):   # each target the product of the last one with the next element
        state = t.table[state, p.inputs[:, step]]
        assert torch.equal(p.targets[:, step], state)


def test_flip_flop_reads_recall_the_last_write():
    t = task("flip_flop", points=40, p_write=0.2, p_read=0.3)
    p = t.sample(gen(), 64)
    assert p.inputs.shape == p.targets.shape == p.mask.shape == (64, 80)
    assert int(p.inputs.max()) < TASKS["flip_flop"].layout(t.config).vocab == 5
    assert bool((p.inputs[:, 0] == 0).all()) and not p.mask[:, 1::2].any()
    reads = 0
    for b in range(64):   # by hand: walk the instructions, remembering the last written bit
        last = None
        for step in range(40):
            instruction, bit = int(p.inputs[b, 2 * step]), int(p.inputs[b, 2 * step + 1]) - 3
            if instruction == 0:
                last = bit
            assert bool(p.mask[b, 2 * step]) == (instruction == 1)
            if instruction == 1:
                reads += 1
                assert bit == last and int(p.targets[b, 2 * step]) == 3 + last
    assert 0.2 < reads / (64 * 39) < 0.4                                # p_read 0.3
    logits = torch.nn.functional.one_hot(p.targets, 5).float() * 10
    assert t.error(logits, p).nanmean() == 0
    assert torch.isnan(t.error(logits, p)[:, 1::2]).all()               # only reads are scored


def test_prompts_head_and_to():
    t = task("linear_regression")
    p = t.sample(gen(), 8)
    h = p.head(3)
    assert h.inputs.shape[0] == 3 and h.xs.shape[0] == 3 and h.info["w"].shape[0] == 3
    assert torch.equal(h.readout, p.readout)
    assert p.head(None) is p and p.to("cpu").inputs.device.type == "cpu"


@pytest.mark.parametrize("dims, k", [(4, 1), (5, 2), (6, 3), (7, 4), (10, 2)])
def test_parity_query_only_level_matches_enumeration(dims, k):
    """The catalog's closed form against every x in {-1, 1}^d and every k-subset."""
    import itertools
    import math

    from icl.tasks.catalog import TASKS

    subsets = list(itertools.combinations(range(dims), k))
    error = 0.0
    for x in itertools.product((-1, 1), repeat=dims):
        plus = sum(math.prod(x[i] for i in s) == 1 for s in subsets) / len(subsets)
        guess_plus = plus >= 0.5   # ties guess +1, as SparseParity.error does
        error += (1 - plus if guess_plus else plus) / 2 ** dims
    level = TASKS["sparse_parity"].levels({"dims": dims, "k": k})["query-only guess"]
    assert level == pytest.approx(error, abs=1e-12)
    if (dims, k) == (10, 2):
        assert level == pytest.approx(0.4453125, abs=1e-12)   # the Transformer's plateau (0.448)
    assert TASKS["linear_regression"].levels({"dims": dims}) == {}
