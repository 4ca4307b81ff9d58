"""State tracking: the word problem of a finite permutation group (S5, A5, ... ; after Merrill,
Petty and Sabharwal's "The Illusion of State in State-Space Models" and Liu et al.'s
"Transformers Learn Shortcuts to Automata").

A prompt is a word g_1 ... g_L of group elements drawn uniformly; the target at position t is
the prefix product s_t = g_1 g_2 ... g_t (permutations composed left to right: s_t maps i to
g_t(s_{t-1}(i))). Elements are token ids, the index of the permutation in lexicographic
order among the group's elements (the identity is 0). S5 and A5 are not solvable, so no
constant-depth circuit tracks their state: a fixed-depth Transformer should fail as L grows,
a recurrent model need not. The per-position error curve is the error against word length;
the evaluation variant `longer_words` runs it on words 4 times the trained length (length
generalisation: positions past the trained length were never trained on).
"""
from __future__ import annotations

import itertools

import torch

from icl.tasks.base import Prompts, TokenTask
from icl.tasks.catalog import GROUPS, TASKS


def permutations_of(group: str) -> list[tuple[int, ...]]:
    """The group's elements in lexicographic order: S_n all permutations of range(n), A_n the
    even ones."""
    degree, even_only = GROUPS[group]
    elements = list(itertools.permutations(range(degree)))
    if even_only:
        elements = [p for p in elements if _is_even(p)]
    return elements


def _is_even(perm: tuple[int, ...]) -> bool:
    inversions = sum(perm[i] > perm[j] for i in range(len(perm)) for j in range(i + 1, len(perm)))
    return inversions % 2 == 0


def multiplication_table(group: str) -> torch.Tensor:
    """(|G|, |G|) int64: table[a, b] = index of the product "a then b" (i -> b(a(i)))."""
    elements = permutations_of(group)
    index = {p: i for i, p in enumerate(elements)}
    return torch.tensor([[index[tuple(b[a[i]] for i in range(len(a)))] for b in elements] for a in elements],
                        dtype=torch.int64)


class WordProblem(TokenTask):
    kind = "word_problem"
    metric_name = "error rate (1 - state accuracy)"

    def __init__(self, config):
        super().__init__(config)
        self.table = multiplication_table(config["group"])
        self._tables: dict[torch.device, torch.Tensor] = {}

    def _table_on(self, device: torch.device) -> torch.Tensor:
        if device not in self._tables:
            self._tables[device] = self.table.to(device)
        return self._tables[device]

    def sample(self, generator, batch, *, dims=None, points=None, variant=None, **options):
        _, length = self.sizes(dims, points)
        name, _ = self.parse_variant(variant, options)
        if name is not None:  # longer_words: length generalisation, words k times the trained length
            length *= TASKS[self.kind].variant_lengths[name]
        device = generator.device
        table = self._table_on(device)
        order = table.shape[0]
        words = torch.randint(0, order, (batch, length), generator=generator, device=device)
        states = torch.empty_like(words)
        state = words[:, 0]
        states[:, 0] = state
        for t in range(1, length):  # L small table look-ups; no host synchronisation
            state = table[state, words[:, t]]
            states[:, t] = state
        return Prompts(inputs=words, targets=states, mask=torch.ones_like(words, dtype=torch.bool),
                       readout=torch.arange(length, device=device), xs=None, ys=None,
                       info={"dims": 0, "points": length, "variant": name})
