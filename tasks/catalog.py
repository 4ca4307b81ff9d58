"""The catalog of ICL tasks: one `TaskKind` entry per kind is the whole description of a task.

An entry names the sampler (its own module, imported only when data is drawn), the
parameters and curricula, the prompt layout, the evaluation variants, the classical
baselines, the chance level, the closed-form levels the plots draw and the extra
metrics: the compiler, the evaluation and the report read these fields and never test a
task's name. It is torch-free, so `icl check` stays fast. Defaults are the study's
(../shared/paper.md); a spec overrides any of them.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from math import comb, factorial
from typing import Callable

from icl.schema import Param


@dataclass(frozen=True)
class Axis:
    """Default curriculum of one axis: start, end, +inc every `interval` steps."""

    start: int
    end: int
    inc: int
    interval: int


CURRICULUM_PARAMS: tuple[Param, ...] = (
    Param("start", "int", None, min=1, max=1_000_000, sweepable=False),
    Param("end", "int", None, min=1, max=1_000_000, sweepable=False),
    Param("inc", "int", None, min=0, max=1_000_000, sweepable=False),
    Param("interval", "int", None, min=1, max=100_000_000, sweepable=False),
)


# How a task's prompts are read out (TaskKind.readout):
READOUTS = (
    "per_point",          # after every example: error after 0, 1, ..., P-1 examples
    "once",               # once, after all the pairs (vector MQAR): one position, P examples seen
    "hidden_and_output",  # twice per example, its hidden features s then its output y (chain of
                          # thought): the plots draw the outputs and give the features a panel
)


@dataclass(frozen=True)
class VariantSweep:
    """A variant evaluated once per value of an `eval` setting (results named "<variant>:<value>",
    e.g. "noisy_query:0.5"), plotted as the error at the read-out against that value."""

    setting: str     # the eval setting listing the values ("noise_sigmas")
    label: str       # the plot's x axis
    log: bool = True


@dataclass(frozen=True)
class VariantBins:
    """A variant scored by a value each prompt carries in `Prompts.info` (an index in
    [0, points)) instead of by position: the curve is the error against that index."""

    info: str        # the key of Prompts.info ("query_index")
    meaning: str     # what the index means (the evaluation's `position_meaning`)


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
    # Classical baselines scored on the very prompts the models see (names of
    # evaluation/baselines.py's BASELINES): `baselines` are those `baselines = auto` runs,
    # `more_baselines` further ones that apply when a spec names them.
    baselines: tuple[str, ...] = ()
    more_baselines: tuple[str, ...] = ()
    # The error of a model that learned nothing, for Table 1 where no zero baseline ran:
    # config -> error (the study's normalisation puts the zero predictor at about 1).
    chance: Callable[[dict], float] = lambda config: 1.0
    readout: str = "per_point"     # one of READOUTS
    # Further per-prompt error curves the evaluation stores beside the model's, each under
    # its name: the sampler's `<name>_error(pred, prompts)` (same shape as `error`).
    metrics: tuple[str, ...] = ()
    # How the evaluation runs, and the plots draw, some of `variants` (the others: as the
    # standard evaluation, on prompts of that variant).
    variant_sweeps: dict[str, VariantSweep] = field(default_factory=dict)
    variant_bins: dict[str, VariantBins] = field(default_factory=dict)
    # Length generalisation: variants whose prompts are this many times as long as the ones
    # trained on (the error curve runs on past the trained length). A model whose learned
    # position table has fewer rows cannot read them: its evaluation skips the variant, saying so.
    variant_lengths: dict[str, int] = field(default_factory=dict)
    # The evaluation's summary (Table 1's metric) averages the error over this share of the
    # positions with a value, the last ones: the error once the prompt holds many examples.
    # Token MQAR averages every query (1.0), as zoology's accuracy does: a query late in the
    # prompt is not one that saw more examples, and its error differs from an early one's.
    tail_fraction: float = 0.25
    # out == "tokens": config -> (vocabulary size, longest prompt in tokens).
    token_shape: Callable[[dict], tuple[int, int]] = lambda config: (config["vocab"], config["seq_len"])

    def __post_init__(self) -> None:
        if self.readout not in READOUTS:
            raise ValueError(f"task {self.name}: unknown readout {self.readout!r}; known: {', '.join(READOUTS)}")
        for name in (*self.variant_sweeps, *self.variant_bins, *self.variant_lengths):
            if name not in self.variants:
                raise ValueError(f"task {self.name}: {name!r} is not one of its variants")
        if not 0 < self.tail_fraction <= 1:
            raise ValueError(f"task {self.name}: tail_fraction must lie in (0, 1]")
        twice = set(self.baselines) & set(self.more_baselines)
        if twice or len(set(self.baselines)) != len(self.baselines):
            raise ValueError(f"task {self.name}: a baseline is listed twice")

    @property
    def applicable_baselines(self) -> tuple[str, ...]:
        """Every baseline that applies to the task: those of `auto`, then the further ones."""
        return self.baselines + self.more_baselines

    def layout(self, config: dict) -> "Layout":
        """Prompt shape for a resolved task config (its final, largest curriculum stage)."""
        if self.out == "tokens":
            vocab, tokens = self.token_shape(config)
            return Layout(token_dim=0, out_dim=vocab, tokens=tokens, vocab=vocab)
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


# Permutation groups of the word problem: name -> (degree n, even permutations only).
GROUPS = {"S3": (3, False), "A4": (4, True), "S4": (4, False), "A5": (5, True), "S5": (5, False)}


def group_order(name: str) -> int:
    degree, even_only = GROUPS[name]
    return factorial(degree) // (2 if even_only else 1)


# The flip-flop language's tokens: write, read, ignore, bit 0, bit 1 (tasks/flip_flop.py).
FLIP_FLOP_VOCAB = 5


def _flip_flop_fits(config: dict) -> list[tuple[str, str]]:
    if config["p_write"] + config["p_read"] > 1:
        return [("p_read", f"p_write + p_read = {config['p_write'] + config['p_read']:g} is more than 1")]
    return []


_NOISE = Param("noise", "float", 0.0, min=0.0, max=100.0, doc="std of Gaussian noise added to y")
_GARG = ("skewed_covariance", "scaled_x", "scaled_y", "orthogonal_subspace")
_OUTLIER_VARIANTS = ("no_outliers", "fixed_outliers")
_DIMS_5_20 = Axis(5, 20, 1, 2000)

# Garg et al.'s baselines per task; the released evaluation gives the outlier tasks least
# squares only. Lasso at every alpha is for sparse linear regression (dense: when named).
_REGRESSION = ("zero", "least_squares", "knn_3", "averaging")
_LASSO = ("lasso_1", "lasso_0.1", "lasso_0.01", "lasso_0.001", "lasso_0.0001")

TASKS: dict[str, TaskKind] = {t.name: t for t in (
    TaskKind("linear_regression", "icl.tasks.linear:LinearRegression",
             "y = w.x with x, w ~ N(0, I)",
             (_dims(20), _points(41), _NOISE),
             {"dims": _DIMS_5_20, "points": Axis(11, 41, 2, 2000)}, variants=_GARG,
             baselines=_REGRESSION, more_baselines=_LASSO),
    TaskKind("sparse_linear_regression", "icl.tasks.linear:SparseLinearRegression",
             "linear regression whose w has k non-zero coordinates among the active ones",
             (_dims(20), _points(41), _NOISE,
              Param("k", "int", 3, min=1, max=4096, doc="non-zero coordinates of w")),
             {"dims": _DIMS_5_20, "points": Axis(11, 41, 2, 2000)}, variants=("scaled_x",),
             constraints=_k_fits_active_dims, baselines=_REGRESSION + _LASSO),
    TaskKind("relu_2nn_regression", "icl.tasks.relu_2nn:Relu2nnRegression",
             "y = sqrt(2/h) W2.ReLU(W1 x), entries N(0, 1)",
             (_dims(20), _points(101), Param("hidden", "int", 100, min=1, max=100_000)),
             {"dims": _DIMS_5_20, "points": Axis(26, 101, 5, 2000)},
             baselines=_REGRESSION + ("nn_gd",)),
    TaskKind("decision_tree", "icl.tasks.decision_tree:DecisionTree",
             "depth-k binary tree splitting on x_j > 0 of active coordinates, leaves N(0, 1)",
             (_dims(20), _points(101), Param("depth", "int", 4, min=1, max=16)),
             {"dims": _DIMS_5_20, "points": Axis(26, 101, 5, 2000)}, lr=4e-4,
             baselines=_REGRESSION + ("tree_depth_4", "tree_unlimited", "xgboost"),
             more_baselines=("gradient_boosting",)),
    TaskKind("orthogonal_outlier_regression", "icl.tasks.outliers:OrthogonalOutlierRegression",
             "linear regression; with p a position is replaced by vectors orthogonal to w",
             (_dims(20), _points(101), Param("p_outlier", "float", 0.5, min=0.0, max=1.0)),
             {"dims": _DIMS_5_20, "points": Axis(26, 101, 5, 2000)}, variants=_OUTLIER_VARIANTS,
             baselines=("zero", "least_squares")),
    TaskKind("many_outlier_regression", "icl.tasks.outliers:ManyOutlierRegression",
             "linear regression; with p a position is x = all-ones, y = 1",
             (_dims(20), _points(512), Param("p_outlier", "float", 0.9, min=0.0, max=1.0)),
             {"dims": Axis(4, 20, 1, 2000), "points": Axis(12, 512, 2, 200)},
             variants=_OUTLIER_VARIANTS, baselines=("zero", "least_squares")),
    TaskKind("sparse_parity", "icl.tasks.parity:SparseParity",
             "x uniform in {-1, 1}^d, y = product of k coordinates chosen per prompt",
             (_dims(10), _points(140), Param("k", "int", 2, min=1, max=64)), lr=4e-4,
             constraints=_k_fits_active_dims, levels=_parity_query_only,
             baselines=("zero", "gf2_solver"), chance=lambda config: 0.5,
             metrics=("released_sign",)),   # sign(0) counted wrong, as the released metric
    TaskKind("chain_of_thought", "icl.tasks.chain_of_thought:ChainOfThought",
             "2-layer ReLU net; each example is x, hidden features s, y (Li et al. 2023)",
             (_dims(10), _points(101), Param("hidden", "int", 4, min=1, max=4096)),
             {"dims": Axis(5, 10, 1, 2000), "points": Axis(26, 101, 5, 2000)},
             tokens_per_point=3, baselines=("zero",), readout="hidden_and_output",
             metrics=("teacher_forced",)),
    TaskKind("vector_mqar", "icl.tasks.mqar:VectorMQAR",
             "key/value pairs of Gaussian vectors, then a query copying one key",
             (_dims(20), Param("pairs", "int", 64, min=1, max=100_000)),
             variants=("noisy_query", "query_position"),
             tokens_per_point=2, extra_tokens=1, out="vector", lr=2e-4, clip=100.0,
             baselines=("zero",), readout="once",
             # error: exact match of the nearest stored value; chance: a uniform guess among the
             # pairs' values (accuracy 1/pairs). Extra: the same under its old name, and the
             # released proxy (argmax over keys of <pred, key> against <target, key>).
             chance=lambda config: 1.0 - 1.0 / config["pairs"],
             metrics=("nearest_value", "released_proxy"),
             variant_sweeps={"noisy_query": VariantSweep("noise_sigmas", "query noise sigma")},
             variant_bins={"query_position": VariantBins(
                 "query_index", "index of the key the query copies (0 = first pair)")}),
    TaskKind("token_mqar", "icl.tasks.mqar:TokenMQAR",
             "zoology's multi-query associative recall over a token vocabulary",
             (Param("vocab", "int", 256, min=4, max=1_000_000),
              Param("pairs", "int", 8, min=1, max=100_000),
              Param("seq_len", "int", 64, min=2, max=1_000_000),
              Param("layout", "choice", "zoology", choices=("zoology", "echo"), legacy="echo",
                    doc="zoology: its sampler (distinct values, power-law query gaps, random "
                        "filler, nothing after a query); echo: each query's value follows it")),
             out="tokens", lr=1e-3, clip=1.0, constraints=_token_mqar_fits, tail_fraction=1.0,
             chance=lambda config: 1.0 - 1.0 / config["vocab"]),   # a uniform guess over the vocabulary
    TaskKind("word_problem", "icl.tasks.word_problem:WordProblem",
             "state tracking: the running product of a word of permutations (S5, A5, ...)",
             (Param("group", "choice", "S5", choices=tuple(GROUPS), doc="the permutation group"),
              Param("points", "int", 32, min=1, max=100_000, doc="word length (group elements per prompt)")),
             out="tokens", lr=1e-3, clip=1.0,
             variants=("longer_words",), variant_lengths={"longer_words": 4},
             token_shape=lambda config: (group_order(config["group"]), config["points"]),
             chance=lambda config: 1.0 - 1.0 / group_order(config["group"])),   # a uniform guess
    TaskKind("flip_flop", "icl.tasks.flip_flop:FlipFlop",
             "flip-flop language: every read recalls the last written bit across ignored ones",
             (Param("points", "int", 256, min=1, max=100_000, doc="instructions per prompt (2 tokens each)"),
              Param("p_write", "float", 0.1, min=0.0, max=1.0, doc="probability of a write instruction"),
              Param("p_read", "float", 0.1, min=0.0, max=1.0, doc="probability of a read instruction")),
             out="tokens", lr=1e-3, clip=1.0, constraints=_flip_flop_fits,
             token_shape=lambda config: (FLIP_FLOP_VOCAB, 2 * config["points"]),
             chance=lambda config: 0.5),   # a coin flip at every read
)}


def baseline_names() -> tuple[str, ...]:
    """Every baseline some task lists, in catalog order."""
    return tuple(dict.fromkeys(n for t in TASKS.values() for n in t.applicable_baselines))


def check_baseline(name: str, kind: str) -> None:
    """Raise a one-line ValueError unless baseline `name` applies to task `kind`."""
    if kind not in TASKS:
        raise ValueError(f"unknown task kind {kind!r}; known: {', '.join(TASKS)}")
    if name in TASKS[kind].applicable_baselines:
        return
    if name not in baseline_names():
        raise ValueError(f"unknown baseline {name!r}; known: {', '.join(baseline_names())}")
    kinds = [t.name for t in TASKS.values() if name in t.applicable_baselines]
    raise ValueError(f"baseline {name!r} does not apply to {kind}; it applies to {', '.join(kinds)}")
