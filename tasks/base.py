"""The interface every ICL task implements: `Prompts` (one sampled batch) and `Task`.

A task is a pure sampler: a seeded `torch.Generator` in, prompts + targets + loss
mask out, all drawn on the generator's device without host synchronisation.
`loss` is what training minimises; `error` is the study's per-position metric,
normalised so that the zero predictor scores about 1 (docs/tasks.md).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import Tensor

from icl.tasks.catalog import TASKS, Layout


@dataclass
class Prompts:
    """One batch of prompts.

    inputs:  (B, T, token_dim) float32, or (B, T) int64 for token tasks
    targets: (B, P, out_dim) float32 (int64 (B, P) for token tasks)
    mask:    (B, P) bool, read-out positions that count in loss and metric
             (outlier tasks: clean positions only)
    readout: (P,) int64, token positions whose model output predicts targets[:, p]
    xs:      (B, P, d) raw inputs for classical baselines (None where they don't apply)
    ys:      (B, P) raw scalar outputs for baselines
    info:    what the sampler knows beyond the prompt (active `dims`, `points`,
             `variant`, and per-kind tensors such as the outlier positions; a task's
             `predict` may add what its metrics need); used by `error`, the metrics
             and tests, never by the model.
    """

    inputs: Tensor
    targets: Tensor
    mask: Tensor
    readout: Tensor
    xs: Tensor | None = None
    ys: Tensor | None = None
    info: dict = field(default_factory=dict)

    def to(self, device: torch.device | str) -> "Prompts":
        def move(t):
            return t.to(device) if isinstance(t, Tensor) else t
        return Prompts(move(self.inputs), move(self.targets), move(self.mask),
                       move(self.readout), move(self.xs), move(self.ys),
                       {k: move(v) for k, v in self.info.items()})

    def gather(self, outputs: Tensor) -> Tensor:
        """Model outputs (B, T, out_dim) at the read-out positions -> (B, P, out_dim)."""
        return outputs[:, self.readout]

    @property
    def batch(self) -> int:
        return self.inputs.shape[0]

    def head(self, count: int | None) -> "Prompts":
        """The first `count` prompts (all of them when count is None or larger than the batch)."""
        if count is None or count >= self.batch:
            return self
        def cut(t):
            return t[:count] if isinstance(t, Tensor) and t.dim() > 0 and t.shape[0] == self.batch \
                and t is not self.readout else t
        return Prompts(cut(self.inputs), cut(self.targets), cut(self.mask), self.readout,
                       cut(self.xs), cut(self.ys), {k: cut(v) for k, v in self.info.items()})


class Task:
    """Base class; one subclass per task kind, constructed by `make_task(task_config)`.

    Subclasses implement `sample`, `loss` and `error`. `dims`/`points` default to
    the config's (final curriculum) values; `variant` names one of the kind's
    evaluation variants in tasks/catalog.py, optionally with a value after a colon
    ("noisy_query:0.5", "scaled_x:3"); the value may also be passed as a keyword
    (`noise=`, `scale=`, `query_index=`).
    """

    kind: str = ""
    metric_name: str = "squared error"
    # True when `error` is a 0/1 error whose complement (accuracy) is what the study plots.
    reports_accuracy: bool = False

    def __init__(self, config: dict):
        self.config = dict(config)

    # -- the contract -------------------------------------------------------
    def sample(self, generator: torch.Generator, batch: int, *, dims: int | None = None,
               points: int | None = None, variant: str | None = None, **options) -> Prompts:
        raise NotImplementedError

    def loss(self, pred: Tensor, prompts: Prompts) -> Tensor:
        """pred (B, P, out_dim) -> scalar training loss."""
        raise NotImplementedError

    def error(self, pred: Tensor, prompts: Prompts) -> Tensor:
        """pred (B, P, out_dim) -> (B, P) metric per position; NaN where mask is False."""
        raise NotImplementedError

    def loss_rows(self, prompts: Prompts) -> Tensor | None:
        """(B, n) int64: the token positions whose outputs the training loss reads, where a task
        reads only a few of them (token MQAR: its queries; the sampler puts them in
        `info["loss_rows"]`); None: the loss reads the read-out positions. Training then computes
        the read-out only at these rows (for a token task, its largest product: width x vocab
        per token) and scores them with `loss_on_rows`, the same loss."""
        return prompts.info.get("loss_rows")

    def loss_on_rows(self, pred: Tensor, prompts: Prompts) -> Tensor:
        """pred (B, n, out_dim) at `loss_rows(prompts)` -> the scalar `loss` would give."""
        raise NotImplementedError(f"{self.kind}: loss_rows without loss_on_rows")

    def predict(self, model, prompts: Prompts) -> Tensor:
        """What evaluation scores: the model's outputs (B, P, out_dim) at the read-outs of one
        forward pass over the prompts. A task whose test-time protocol differs from teacher
        forcing (chain_of_thought: the model's own intermediate step) overrides it."""
        return prompts.gather(model(prompts.inputs).float())

    # -- helpers shared by the kinds ---------------------------------------
    @property
    def layout(self) -> Layout:
        return TASKS[self.kind].layout(self.config)

    @property
    def variants(self) -> tuple[str, ...]:
        return TASKS[self.kind].variants

    def default_sizes(self) -> tuple[int, int]:
        """(dims, points) of the full-size prompt (the curriculum's end)."""
        return self.config.get("dims", 0), self.config.get("pairs", self.config.get("points", 0))

    def sizes(self, dims: int | None, points: int | None) -> tuple[int, int]:
        """Resolve and check the curriculum's current (dims, points)."""
        full_dims, full_points = self.default_sizes()
        dims = full_dims if dims is None else int(dims)
        points = full_points if points is None else int(points)
        if not 1 <= dims <= full_dims:
            raise ValueError(f"{self.kind}: dims={dims} must be in [1, {full_dims}] (the token width)")
        if not 1 <= points <= full_points:
            raise ValueError(f"{self.kind}: points={points} must be in [1, {full_points}] "
                             "(the longest prompt the model is sized for)")
        return dims, points

    def parse_variant(self, variant: str | None, options: dict,
                      option_names: dict[str, str] | None = None) -> tuple[str | None, float | None]:
        """Split 'name:value' and check the name; returns (name or None, value or None).

        option_names maps a variant to the keyword that may carry its value instead.
        """
        allowed = self.variants
        unknown = set(options) - set((option_names or {}).values())
        if unknown:
            raise ValueError(f"{self.kind}: unknown sample option(s) {sorted(unknown)}")
        if variant in (None, "", "standard"):
            if options:
                raise ValueError(f"{self.kind}: options {sorted(options)} need a variant")
            return None, None
        name, _, text = variant.partition(":")
        if name not in allowed:
            known = ", ".join(allowed) or "none"
            raise ValueError(f"{self.kind}: unknown variant {name!r}; known: {known}")
        value = None
        if text:
            try:
                value = float(text)
            except ValueError:
                raise ValueError(f"{self.kind}: variant {variant!r}: {text!r} is not a number") from None
        key = (option_names or {}).get(name)
        if key is not None and key in options:
            if value is not None:
                raise ValueError(f"{self.kind}: variant {variant!r} given a value twice ({key}=)")
            value = float(options[key])
        elif options:
            raise ValueError(f"{self.kind}: variant {name!r} takes no options {sorted(options)}")
        return name, value


class TokenTask(Task):
    """A task over token ids whose model output is vocabulary logits at every token (catalog
    `out = "tokens"`): cross-entropy at the masked positions, 0/1 error per position."""

    reports_accuracy = True

    def sizes(self, dims, points):
        """(0, points): token ids have no width; `points` (pairs, word length, ...) up to the
        config's."""
        _, full = self.default_sizes()
        count = full if points is None else int(points)
        if not 1 <= count <= full:
            raise ValueError(f"{self.kind}: points={count} must be in [1, {full}]")
        return 0, count

    def loss(self, pred, prompts):
        # cross-entropy at the masked positions; weighted, not indexed, to avoid a host sync
        ce = F.cross_entropy(pred.transpose(1, 2), prompts.targets, reduction="none")
        mask = prompts.mask.to(ce.dtype)
        return (ce * mask).sum() / mask.sum().clamp_min(1.0)

    def loss_on_rows(self, pred, prompts):
        # every loss row counts (they are where mask is true): the mean cross-entropy there
        targets = prompts.targets.gather(1, prompts.info["loss_rows"])
        return F.cross_entropy(pred.transpose(1, 2), targets)

    def error(self, pred, prompts):
        wrong = (pred.argmax(-1) != prompts.targets).to(torch.float32)
        return nan_where_masked(wrong, prompts.mask)


def active_mask(dims: int, width: int, device: torch.device) -> Tensor:
    """(width,) float mask: 1 on the first `dims` coordinates, 0 on the curriculum's inactive ones."""
    return (torch.arange(width, device=device) < dims).to(torch.float32)


def random_subset(generator: torch.Generator, batch: int, population: int, k: int) -> Tensor:
    """(batch, k) int64: k distinct indices in [0, population), one draw per prompt."""
    scores = torch.rand(batch, population, generator=generator, device=generator.device)
    # the k smallest scores in ascending order: argsort(dim=1)[:, :k] without sorting the rest
    # (token MQAR's keys, k = 8 of 4,095: 57 ms -> 1.3 ms per draw of 256 on a CPU core)
    return scores.topk(k, dim=1, largest=False).indices


def masked_mean(values: Tensor, mask: Tensor) -> Tensor:
    """Mean of `values` over mask-True entries (0 when there are none), without syncing."""
    mask = mask.to(values.dtype)
    return (values * mask).sum() / mask.sum().clamp_min(1.0)


def nan_where_masked(values: Tensor, mask: Tensor) -> Tensor:
    return torch.where(mask, values, torch.full_like(values, float("nan")))
