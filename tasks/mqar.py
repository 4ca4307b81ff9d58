"""Multi-query associative recall: the vector-valued version of the study and zoology's token version."""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

from icl.tasks.base import Prompts, Task, TokenTask, active_mask, nan_where_masked, random_subset


class VectorMQAR(Task):
    """Keys and values: Gaussian vectors rescaled to norm sqrt(d) (active dims), tokens
    k1, v1, ..., kn, vn, q with q a copy of a uniformly drawn key; the target is the value
    of the key with the largest inner product with q, read at the last token.

    Variants: "noisy_query" (Gaussian noise of std sigma added to q, which is then rescaled
    to norm sqrt(d); "noisy_query:0.5" or noise=0.5) and "query_position" (q copies key i,
    0-based: "query_position:5" or query_index=5; without an index prompt b queries key
    b mod n, so a batch covers every position evenly and `info["query_index"]` says which).

    Metric (`error`): exact match of the stored value nearest to the prediction; the
    released proxy is the extra metric `released_proxy` (docs/tasks.md).
    """

    kind = "vector_mqar"
    metric_name = "error rate (1 - accuracy of the stored value nearest to pred)"
    reports_accuracy = True
    option_names = {"noisy_query": "noise", "query_position": "query_index"}

    def sample(self, generator, batch, *, dims=None, points=None, variant=None, **options):
        dims, pairs = self.sizes(dims, points)
        name, value = self.parse_variant(variant, options, self.option_names)
        d, device = self.config["dims"], generator.device
        scale = math.sqrt(dims)
        active = active_mask(dims, d, device)

        def unit_vectors():
            v = torch.randn(batch, pairs, d, generator=generator, device=device) * active
            return v / v.norm(dim=-1, keepdim=True) * scale

        keys, values = unit_vectors(), unit_vectors()
        if name == "query_position" and value is not None:
            index = int(value)
            if not 0 <= index < pairs:
                raise ValueError(f"{self.kind}: query_position {index} not in [0, {pairs})")
            query_index = torch.full((batch,), index, dtype=torch.long, device=device)
        elif name == "query_position":
            query_index = torch.arange(batch, device=device) % pairs
        else:  # exclusive upper bound: the query always copies one of the n keys
            query_index = torch.randint(0, pairs, (batch,), generator=generator, device=device)
        query = keys[torch.arange(batch, device=device), query_index]
        if name == "noisy_query":
            # as the released sampler: noise on q, then q rescaled to norm sqrt(d) like every token
            sigma = 0.0 if value is None else value
            query = query + sigma * torch.randn(batch, d, generator=generator, device=device) * active
            query = query / query.norm(dim=-1, keepdim=True) * scale
        target_index = torch.einsum("bnd,bd->bn", keys, query).argmax(dim=1)
        target = values[torch.arange(batch, device=device), target_index]
        inputs = torch.cat((torch.stack((keys, values), dim=2).reshape(batch, 2 * pairs, d),
                            query.unsqueeze(1)), dim=1)
        return Prompts(inputs=inputs, targets=target.unsqueeze(1),
                       mask=torch.ones(batch, 1, dtype=torch.bool, device=device),
                       readout=torch.full((1,), 2 * pairs, dtype=torch.long, device=device), xs=None, ys=None,
                       info={"dims": dims, "points": pairs, "variant": name, "value": value,
                             "query_index": query_index, "target_index": target_index})

    def loss(self, pred, prompts):
        return F.mse_loss(pred, prompts.targets)

    @staticmethod
    def keys_values(prompts: Prompts) -> tuple[Tensor, Tensor]:
        pairs = (prompts.inputs.shape[1] - 1) // 2
        return prompts.inputs[:, 0:2 * pairs:2], prompts.inputs[:, 1:2 * pairs:2]

    def error(self, pred, prompts):
        """The headline metric, exact match: 0 iff the stored value nearest to the prediction
        (Euclidean, among the prompt's n values) is the target value; chance 1 - 1/n."""
        _, values = self.keys_values(prompts)
        nearest = torch.cdist(pred, values, compute_mode="donot_use_mm_for_euclid_dist").argmin(-1)
        chosen = values.gather(1, nearest.unsqueeze(-1).expand(*nearest.shape, values.shape[-1]))
        hit = (chosen == prompts.targets).all(-1)
        return nan_where_masked(1.0 - hit.to(pred.dtype), prompts.mask)

    def nearest_value_error(self, pred: Tensor, prompts: Prompts) -> Tensor:
        """The headline `error` under the name the extra metric had before it became the
        headline (2026-12-05), so evaluations written before and after both carry it."""
        return self.error(pred, prompts)

    def released_proxy_error(self, pred: Tensor, prompts: Prompts) -> Tensor:
        """The released metric, a proxy: hit iff argmax_j <pred, k_j> = argmax_j <target, k_j>,
        the key most aligned with the prediction against the key most aligned with the target
        value (not the queried key)."""
        keys, _ = self.keys_values(prompts)
        hit = (torch.einsum("bnd,bpd->bpn", keys, pred).argmax(-1)
               == torch.einsum("bnd,bpd->bpn", keys, prompts.targets).argmax(-1))
        return nan_where_masked(1.0 - hit.to(pred.dtype), prompts.mask)


class TokenMQAR(TokenTask):
    """Zoology's multi-query associative recall over token ids.

    Keys come from [1, V/2), distinct within a prompt; values from [V/2, V). The first 2n
    tokens are the n (key, value) pairs; the rest of the sequence has (seq_len - 2n) // 2
    two-token slots, n of which ask for one key each. The model must predict the key's
    value at its query token: `mask` marks the query tokens (the readout is every token).

    `layout` decides the rest (docs/tasks.md):
    - "zoology" (default), zoology's sampler: values distinct; slot i (1-based) holds a query
      with weight i^(a - 1), a = 0.01 (drawn without replacement, most queries soon after the
      pairs); every token that is neither a pair nor a query key is uniform over [0, V).
    - "echo", this project's first layout: values drawn with replacement; n slots chosen
      uniformly hold each key once (random order) followed by its value; the rest token 0.
    """

    kind = "token_mqar"
    metric_name = "error rate (1 - recall accuracy)"
    # zoology's power_a: slot i of the query section holds a query with weight i^(a - 1)
    POWER_A = 0.01

    def __init__(self, config):
        super().__init__(config)
        vocab, pairs, seq_len = config["vocab"], config["pairs"], config["seq_len"]
        if vocab // 2 - 1 < pairs:
            raise ValueError(f"token_mqar: vocab={vocab} has {vocab // 2 - 1} key tokens, "
                             f"fewer than pairs={pairs}")
        if (seq_len - 2 * pairs) // 2 < pairs:
            raise ValueError(f"token_mqar: seq_len={seq_len} too short for {pairs} pairs "
                             f"and their queries (needs at least {4 * pairs})")
        layout = config.get("layout", "zoology")
        if layout not in ("zoology", "echo"):
            raise ValueError(f"token_mqar: layout={layout!r} is not zoology or echo")
        self.echo = layout == "echo"

    def sample(self, generator, batch, *, dims=None, points=None, variant=None, **options):
        _, pairs = self.sizes(dims, points)
        self.parse_variant(variant, options)
        vocab, seq_len, device = self.config["vocab"], self.config["seq_len"], generator.device
        half, slots = vocab // 2, (seq_len - 2 * pairs) // 2
        keys = random_subset(generator, batch, half - 1, pairs) + 1
        if self.echo:
            values = torch.randint(half, vocab, (batch, pairs), generator=generator, device=device)
            inputs = torch.zeros(batch, seq_len, dtype=torch.long, device=device)
            slot = random_subset(generator, batch, slots, pairs).sort(dim=1).values
            order = random_subset(generator, batch, pairs, pairs)   # which pair each query asks for
            asked, answer = keys.gather(1, order), values.gather(1, order)
        else:
            values = random_subset(generator, batch, vocab - half, pairs) + half
            weight = torch.arange(1, slots + 1, dtype=torch.float64, device=device) ** (self.POWER_A - 1)
            # slot[:, j] asks for key j (draws without replacement: mostly early slots first)
            slot = torch.multinomial(weight.expand(batch, slots), pairs, replacement=False,
                                     generator=generator)
            asked, answer = keys, values
            inputs = torch.randint(0, vocab, (batch, seq_len), generator=generator, device=device)
        inputs[:, 0:2 * pairs:2] = keys
        inputs[:, 1:2 * pairs:2] = values
        where = 2 * pairs + 2 * slot
        inputs.scatter_(1, where, asked)
        if self.echo:
            inputs.scatter_(1, where + 1, answer)
        targets = torch.zeros(batch, seq_len, dtype=torch.long, device=device)
        targets.scatter_(1, where, answer)
        mask = torch.zeros(batch, seq_len, dtype=torch.bool, device=device)
        mask.scatter_(1, where, True)
        # loss_rows: the query positions, the only ones the loss reads (Task.loss_rows)
        return Prompts(inputs=inputs, targets=targets, mask=mask,
                       readout=torch.arange(seq_len, device=device), xs=None, ys=None,
                       info={"dims": 0, "points": pairs, "variant": None, "loss_rows": where})
