"""The training step of K runs of one architecture as one program: their weights stacked in one
model (a leading run axis, blocks/stacked.py), one forward over the K runs' prompts, each run's
own loss, and one StackedAdam step with each run's own lr, weight decay and clipping.

A lone run is K = 1 and goes through the same code. Runs share no weights, so the gradient of
the sum of the runs' losses is each run's own gradient; a run that is not stepping (diverged,
or resumed from a later checkpoint than the others) is masked out of the sum and the update.

Forward modes (status.json's "pack": {"runs": [...], "mode": ...}):
- "stacked": one call of the stacked model on (K, B, T, ...) prompts;
- "loop": one run after another, each through its slice of the stacked weights, with its own
  dropout seed: used when dropout > 0 (each run's masks must come from its own seed, as when
  it trains alone) or when ICL_PACK_MODE=loop asks for it;
- "single": a pack of one.
"""
from __future__ import annotations

import os

import torch
from torch.func import functional_call

from icl.blocks.model import stack_models
from icl.training import precision
from icl.training.compiled import CompiledForward
from icl.training.errors import RunError
from icl.training.stacked_optimizer import StackedAdam

MODE_ENV = "ICL_PACK_MODE"


def forward_mode(runs: int, dropout: float) -> str:
    if runs == 1:
        return "single"
    if dropout > 0 or os.environ.get(MODE_ENV, "").strip() == "loop":
        return "loop"
    return "stacked"


class PackedEngine:
    """The stacked model and optimizer of a pack, and its training step."""

    def __init__(self, models: list[torch.nn.Module], train_settings: list[dict], dropout: float,
                 precision_name: str, device: torch.device, compile_label: str | None = None):
        names = {str(t["optimizer"]).lower() for t in train_settings}
        if len(names) != 1 or not names <= {"adam", "adamw"}:
            raise RunError(f"optimizer {', '.join(sorted(names))}: a pack needs one of adam or adamw")
        self.device, self.precision = device, precision_name
        self.mode = forward_mode(len(models), dropout)
        self.model = stack_models(models).to(device)
        self.model.train()
        # The training step's forward, through torch.compile when a label is given
        # (icl.training.compiled); metrics and evaluation call the plain model.
        self.train_forward = CompiledForward(self.model, compile_label is not None and self.mode != "loop",
                                             compile_label or "")
        self.runs = len(models)
        self.optimizer = StackedAdam(
            list(self.model.parameters()), [float(t["lr"]) for t in train_settings],
            decoupled=names == {"adamw"},
            weight_decay=[float(t["weight_decay"]) for t in train_settings])
        self.clips = torch.tensor([float(t["clip"]) for t in train_settings], device=device)

    def load_run(self, k: int, checkpoint: dict) -> None:
        """Run k's weights and optimizer state from its (lone-format) checkpoint."""
        with torch.no_grad():
            for name, tensor in self.model.state_dict().items():
                tensor[k:k + 1].copy_(checkpoint["model"][name])
        self.optimizer.load_run_state(k, checkpoint["optimizer"])

    def run_weights(self, k: int) -> dict:
        """Run k's state_dict as a lone model's (K = 1), on the CPU."""
        return {name: t[k:k + 1].detach().cpu().clone() for name, t in self.model.state_dict().items()}

    def run_optimizer_state(self, k: int) -> dict:
        return self.optimizer.run_state(k)

    def step(self, inputs: list[torch.Tensor], loss_fns: list, active: torch.Tensor,
             dropout_seeds: list[int] | None, rows: list[torch.Tensor] | None = None
             ) -> tuple[torch.Tensor, torch.Tensor]:
        """One step of every active run. inputs[k]: run k's prompts; loss_fns[k](output) its
        loss; active (K,) bool; rows[k]: the positions whose outputs run k's loss reads (None:
        all). Returns the runs' losses and gradient norms (K,) on the device, without a host sync."""
        with precision.matmul_precision(self.precision, self.device):
            with precision.autocast(self.precision, self.device):
                outputs = self._forward(inputs, dropout_seeds, rows, self.train_forward)
            losses = torch.stack([fn(out.float()) for fn, out in zip(loss_fns, outputs)])
            self.optimizer.zero_grad()
            # Each run's gradient is the gradient of its own loss; masked runs get none.
            torch.where(active, losses, torch.zeros_like(losses)).sum().backward()
        norms = self.optimizer.clip_(self.clips)
        self.optimizer.step(active)
        return losses.detach(), norms.detach()

    @torch.no_grad()
    def outputs(self, inputs: list[torch.Tensor]) -> list[torch.Tensor]:
        """Every run's outputs on its inputs, in eval mode (no dropout: no random draw, so the
        training that follows is unchanged) and without gradients."""
        self.model.eval()
        try:
            with precision.matmul_precision(self.precision, self.device):
                with precision.autocast(self.precision, self.device):
                    return [out.float() for out in self._forward(inputs, None, None, self.model)]
        finally:
            self.model.train()

    def _forward(self, inputs, dropout_seeds, rows, forward) -> list[torch.Tensor]:
        """The K runs' outputs; `forward` calls the stacked model (plain, or compiled)."""
        if self.mode != "loop":  # a lone run (its own dropout stream), or a pack without dropout
            if self.mode == "single" and dropout_seeds is not None:
                torch.manual_seed(dropout_seeds[0])
            stacked_rows = None if rows is None else torch.stack(rows)
            return list(forward(torch.stack(inputs), rows=stacked_rows).unbind(0))
        params = dict(self.model.named_parameters())
        buffers = dict(self.model.named_buffers())
        outputs = []
        for k, x in enumerate(inputs):
            if dropout_seeds is not None:
                torch.manual_seed(dropout_seeds[k])  # the run's own dropout stream, as when alone
            weights = {name: t[k:k + 1] for name, t in {**params, **buffers}.items()}
            kwargs = {} if rows is None else {"rows": rows[k].unsqueeze(0)}
            outputs.append(functional_call(self.model, weights, (x.unsqueeze(0),), kwargs)[0])
        return outputs
