"""The flip-flop language (Liu et al. 2023, "Exposing Attention Glitches with Flip-Flop Language
Modeling"): a regular language whose every read must recall the last bit written, across
any number of ignored bits.

A prompt is L (instruction, bit) pairs, 2L tokens: the instruction is write, read or ignore
(the first is always a write; then write with p_write, read with p_read, else ignore), the bit
is 0 or 1, drawn uniformly except after a read, where it is the bit of the latest write. The
model predicts, at every read instruction, the bit that follows it. Token ids: 0 write, 1 read,
2 ignore, 3 bit 0, 4 bit 1.
"""
from __future__ import annotations

import torch

from icl.tasks.base import Prompts, TokenTask

# token ids; bit 1 is BIT0 + 1, the last of the catalog's FLIP_FLOP_VOCAB
WRITE, READ, IGNORE, BIT0 = 0, 1, 2, 3


class FlipFlop(TokenTask):
    kind = "flip_flop"
    metric_name = "error rate at reads (1 - recall accuracy)"

    def sample(self, generator, batch, *, dims=None, points=None, variant=None, **options):
        _, length = self.sizes(dims, points)
        self.parse_variant(variant, options)
        device = generator.device
        draw = torch.rand(batch, length, generator=generator, device=device)
        p_write, p_read = self.config["p_write"], self.config["p_read"]
        instructions = torch.where(draw < p_write, WRITE, torch.where(draw < p_write + p_read, READ, IGNORE))
        instructions[:, 0] = WRITE
        bits = torch.randint(0, 2, (batch, length), generator=generator, device=device)
        # the latest write at or before each step: a running maximum of the write positions
        steps = torch.arange(length, device=device).expand(batch, length)
        latest = torch.where(instructions == WRITE, steps, 0).cummax(dim=1).values
        reads = instructions == READ
        bits = torch.where(reads, bits.gather(1, latest), bits)
        inputs = torch.stack((instructions, bits + BIT0), dim=2).reshape(batch, 2 * length)
        targets = torch.zeros_like(inputs)
        targets[:, 0::2] = bits + BIT0            # read at the instruction: the bit after it
        mask = torch.zeros_like(inputs, dtype=torch.bool)
        mask[:, 0::2] = reads
        return Prompts(inputs=inputs, targets=targets, mask=mask,
                       readout=torch.arange(2 * length, device=device), xs=None, ys=None,
                       info={"dims": 0, "points": length, "variant": None})
