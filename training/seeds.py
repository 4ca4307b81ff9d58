"""Where every random number of a run comes from, so training and evaluation never share one.

Each use of randomness draws from a named stream and gets a 64-bit seed:

    seed = stream_base + (sha256("icl/<stream>/<run seed>/<index>") mod 2**60)

with a distinct base per stream (`STREAMS`). The bases are 2**60 apart, so seeds of
different streams lie in disjoint ranges: a training prompt seed can never equal an
evaluation prompt seed, whatever the run seed or step. Within a stream the hash
spreads (run seed, index) pairs so that neighbouring runs do not share batches.

Streams:
- "init":    model initialisation (index 0), seeds torch's global RNG before build_model;
- "train":   the prompt batch of training step `index` (a torch.Generator on the device);
- "dropout": torch's global RNG before the forward pass of step `index` (dropout masks);
- "eval":    evaluation prompt chunk `index` (independent of the run seed, so every
             model of a study is scored on the very same prompts);
- "bootstrap": the resampling of evaluation prompts for the 5%/95% bands.
"""
from __future__ import annotations

import hashlib

STREAMS = {"init": 0, "train": 1, "dropout": 2, "eval": 3, "bootstrap": 4, "validation": 5,
           "monitor": 6}
_SPAN = 2 ** 60


def stream_seed(stream: str, seed: int, index: int = 0) -> int:
    """A 64-bit seed for draw `index` of `stream` in a run seeded `seed`."""
    if stream not in STREAMS:
        raise ValueError(f"unknown random stream {stream!r}")
    digest = hashlib.sha256(f"icl/{stream}/{int(seed)}/{int(index)}".encode()).digest()
    return STREAMS[stream] * _SPAN + int.from_bytes(digest[:8], "little") % _SPAN


def stream_of(value: int) -> str:
    """Which stream a seed came from (used by tests to show the streams are disjoint)."""
    base = value // _SPAN
    for name, number in STREAMS.items():
        if number == base:
            return name
    raise ValueError(f"seed {value} belongs to no stream")
