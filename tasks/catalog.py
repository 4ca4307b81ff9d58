"""The catalog of ICL tasks: names, parameters, curricula, prompt shapes and evaluation variants.

This is the semantics registry for tasks (torch-free, so `icl check` stays fast).
Each sampler lives in its own module (`module`), imported only when data is drawn.
Defaults are the study's (../shared/paper.md); a spec overrides any of them.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from math import comb
from typing import Callable

from icl.schema import Param


@dataclass(frozen=True)
class Axis:
    """Default curriculum of one axis: start, end, +inc every `interval` steps."""

    start: int
    end: int
    inc: int
    interval: int


CURRICULUM_AXES = ("dims", "points")

CURRICULUM_PARAMS: tuple[Param, ...] = (
    Param("start", "int", None, min=1, max=1_000_000, sweepable=False),
    Param("end", "int", None, min=1, max=1_000_000, sweepable=False),
    Param("inc", "int", None, min=0, max=1_000_000, sweepable=False),
    Param("interval", "int", None, min=1, max=100_000_000, sweepable=False),
)


@dataclass(frozen=True)
class TaskKind:
    name: str
    module: str                    # "icl.tasks.linear:LinearRegression", imported lazily
    doc: str
    params: tuple[Param, ...]
    curriculum: dict[str, Axis] = field(default_factory=dict)
    variants: tuple[str, ...] = ()  # named evaluation variants besides the standard one
    # Prompt layout, used by the compiler to size read-in, read-out and positions.
    tokens_per_point: int = 2      # x, y (chain of thought: x, s, y)
    extra_tokens: int = 0          # e.g. the MQAR query
    out: str = "scalar"            # "scalar" | "vector" (d dims) | "tokens" (vocab logits)
    lr: float = 1e-4               # the released config's learning rate (used by specs/paper)
    clip: float = 10.0
    # Constraints between parameters, checked at `icl check` time: config -> [(key, message)].
    constraints: Callable[[dict], list[tuple[str, str]]] = lambda config: []
    # Errors of guessers known in closed form, drawn as dotted levels in the plots:
    # config -> {label: error}. They need no prompts, so no evaluation computes them.
    levels: Callable[[dict], dict[str, float]] = lambda config: {}

    def layout(self, config: dict) -> "Layout":
        """Prompt shape for a resolved task config (its final, largest curriculum stage)."""
        if self.out == "tokens":
            return Layout(token_dim=0, out_dim=config["vocab"], tokens=config["seq_len"],
                          vocab=config["vocab"])
        dims = config["dims"]
        count = config["pairs"] if "pairs" in config else config["points"]
        tokens = self.tokens_per_point * count + self.extra_tokens
        if self.tokens_per_point == 3:  # chain of thought: tokens carry x (d) or s (hidden)
            width = max(dims, config["hidden"])
            return Layout(token_dim=width, out_dim=config["hidden"], tokens=tokens)
        out_dim = dims if self.out == "vector" else 1
        return Layout(token_dim=dims, out_dim=out_dim, tokens=tokens)

    def with_defaults(self, config: dict) -> dict:
        """`config` with the catalog's default for every parameter it leaves out."""
        return {**{p.name: p.default for p in self.params}, **config}

    def param(self, name: str) -> Param | None:
        for p in self.params:
            if p.name == name:
                return p
        return None


@dataclass(frozen=True)
class Layout:
    """What the model must read and write for a task: sizes the read-in, read-out and positions."""

    token_dim: int   # width of one input token (0 for token-id inputs)
    out_dim: int     # width of the read-out
    tokens: int      # longest prompt in tokens
    vocab: int = 0   # >0: inputs are token ids embedded by a table of this size


def _dims(default: int) -> Param:
    return Param("dims", "int", default, min=1, max=4096, doc="input dimension d")


def _points(default: int) -> Param:
    return Param("points", "int", default, min=1, max=100_000,
                 doc="in-context examples per prompt (the curriculum's end)")


def _k_fits_active_dims(config: dict) -> list[tuple[str, str]]:
    """k coordinates are drawn among the active ones, from the curriculum's first stage on."""
    first = config.get("curriculum", {}).get("dims", {}).get("start", config["dims"])
    if config["k"] > first:
        return [("k", f"k={config['k']} does not fit in the {first} active dimensions "
                      f"{'at the curriculum start' if first < config['dims'] else 'of the task'}")]
    return []


def _parity_query_only(config: dict) -> dict[str, float]:
    """The best guess of y from the query x alone, not the prompt: its expected error rate.

    With the k coordinates drawn per prompt, y = +1 given x for the share p of the C(d, k)
    subsets with an even number of x's -1 coordinates; that share depends only on how many
    (m) are -1, so the error, E_x min(p, 1 - p) (ties guess +1, as the task's error does),
    is a sum over m. A model on this level learned the labels' dependence on the query and
    nothing from the examples (d = 10, k = 2: 0.4453, where chance is 0.5)."""
    d, k = config["dims"], config["k"]
    error = 0.0
    for m in range(d + 1):
        p = sum(comb(m, j) * comb(d - m, k - j) for j in range(0, k + 1, 2)) / comb(d, k)
        error += comb(d, m) / 2 ** d * (1.0 - p if p >= 0.5 else p)
    return {"query-only guess": error}


def _token_mqar_fits(config: dict) -> list[tuple[str, str]]:
    vocab, pairs, seq_len = config["vocab"], config["pairs"], config["seq_len"]
    if vocab // 2 - 1 < pairs:
        return [("vocab", f"vocab={vocab} has {vocab // 2 - 1} key tokens, fewer than pairs={pairs}")]
    if seq_len < 4 * pairs:
        return [("seq_len", f"seq_len={seq_len} is too short for {pairs} pairs and their queries "
                            f"(needs at least {4 * pairs})")]
    return []


_NOISE = Param("noise", "float", 0.0, min=0.0, max=100.0, doc="std of Gaussian noise added to y")
_GARG = ("skewed_covariance", "scaled_x", "scaled_y", "orthogonal_subspace")
_OUTLIER_VARIANTS = ("no_outliers", "fixed_outliers")
_DIMS_5_20 = Axis(5, 20, 1, 2000)

TASKS: dict[str, TaskKind] = {t.name: t for t in (
    TaskKind("linear_regression", "icl.tasks.linear:LinearRegression",
             "y = w.x with x, w ~ N(0, I)",
             (_dims(20), _points(41), _NOISE),
             {"dims": _DIMS_5_20, "points": Axis(11, 41, 2, 2000)}, variants=_GARG),
    TaskKind("sparse_linear_regression", "icl.tasks.linear:SparseLinearRegression",
             "linear regression whose w has k non-zero coordinates among the active ones",
             (_dims(20), _points(41), _NOISE,
              Param("k", "int", 3, min=1, max=4096, doc="non-zero coordinates of w")),
             {"dims": _DIMS_5_20, "points": Axis(11, 41, 2, 2000)}, variants=("scaled_x",),
             constraints=_k_fits_active_dims),
    TaskKind("relu_2nn_regression", "icl.tasks.relu_2nn:Relu2nnRegression",
             "y = sqrt(2/h) W2.ReLU(W1 x), entries N(0, 1)",
             (_dims(20), _points(101), Param("hidden", "int", 100, min=1, max=100_000)),
             {"dims": _DIMS_5_20, "points": Axis(26, 101, 5, 2000)}),
    TaskKind("decision_tree", "icl.tasks.decision_tree:DecisionTree",
             "depth-k binary tree splitting on x_j > 0 of active coordinates, leaves N(0, 1)",
             (_dims(20), _points(101), Param("depth", "int", 4, min=1, max=16)),
             {"dims": _DIMS_5_20, "points": Axis(26, 101, 5, 2000)}, lr=4e-4),
    TaskKind("orthogonal_outlier_regression", "icl.tasks.outliers:OrthogonalOutlierRegression",
             "linear regression; with p a position is replaced by vectors orthogonal to w",
             (_dims(20), _points(101), Param("p_outlier", "float", 0.5, min=0.0, max=1.0)),
             {"dims": _DIMS_5_20, "points": Axis(26, 101, 5, 2000)}, variants=_OUTLIER_VARIANTS),
    TaskKind("many_outlier_regression", "icl.tasks.outliers:ManyOutlierRegression",
             "linear regression; with p a position is x = all-ones, y = 1",
             (_dims(20), _points(512), Param("p_outlier", "float", 0.9, min=0.0, max=1.0)),
             {"dims": Axis(4, 20, 1, 2000), "points": Axis(12, 512, 2, 200)},
             variants=_OUTLIER_VARIANTS),
    TaskKind("sparse_parity", "icl.tasks.parity:SparseParity",
             "x uniform in {-1, 1}^d, y = product of k coordinates chosen per prompt",
             (_dims(10), _points(140), Param("k", "int", 2, min=1, max=64)), lr=4e-4,
             constraints=_k_fits_active_dims, levels=_parity_query_only),
    TaskKind("chain_of_thought", "icl.tasks.chain_of_thought:ChainOfThought",
             "2-layer ReLU net; each example is x, hidden features s, y (Li et al. 2023)",
             (_dims(10), _points(101), Param("hidden", "int", 4, min=1, max=4096)),
             {"dims": Axis(5, 10, 1, 2000), "points": Axis(26, 101, 5, 2000)},
             tokens_per_point=3),
    TaskKind("vector_mqar", "icl.tasks.mqar:VectorMQAR",
             "key/value pairs of Gaussian vectors, then a query copying one key",
             (_dims(20), Param("pairs", "int", 64, min=1, max=100_000)),
             variants=("noisy_query", "query_position"),
             tokens_per_point=2, extra_tokens=1, out="vector", lr=2e-4, clip=100.0),
    TaskKind("token_mqar", "icl.tasks.mqar:TokenMQAR",
             "zoology's multi-query associative recall over a token vocabulary",
             (Param("vocab", "int", 256, min=4, max=1_000_000),
              Param("pairs", "int", 8, min=1, max=100_000),
              Param("seq_len", "int", 64, min=2, max=1_000_000)),
             out="tokens", lr=1e-3, clip=1.0, constraints=_token_mqar_fits),
)}
