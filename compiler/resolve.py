"""Load a spec with its imports, apply `extends`, and check every section against the registries.

Output: a `Program` whose declarations are checked dicts of Python values (or
`Sweep`s), each key remembering where it was written so later checks (the
model's shape, the run expansion) can still point at FILE:LINE:COL.

Top-level sections:
  model NAME [extends BASE] { layers = "..." width = ... }      options: blocks/catalog.py
  task NAME [extends BASE] { kind = ... curriculum { dims {...} points {...} } }
                                                                 params: tasks/catalog.py
  train NAME [extends BASE] { ... }   eval NAME [extends BASE] { ... }   (reusable presets)
  experiment NAME [extends BASE] { models = [...] tasks = [...] train [extends P] {...} eval {...} }
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from icl.blocks.catalog import BLOCK_OPTIONS, BLOCKS, MODEL_OPTIONS, users_of
from icl.schema import Param
from icl.compiler.values import BadValue, Sweep, check_value, first_repeat, repeat_message
from icl.dsl import limits
from icl.dsl.ast import Assignment, Import, List, Pos, Section, SpecFile, String
from icl.dsl.format import format_value
from icl.dsl.layers import LayerSyntaxError, expand, flat
from icl.dsl.parse import parse, read_source
from icl.errors import ErrorList, SpecError, Where, did_you_mean
from icl.tasks.catalog import CURRICULUM_PARAMS, TASKS, check_baseline

TOP_LEVEL = ("model", "task", "train", "eval", "experiment")

TRAIN_PARAMS: tuple[Param, ...] = (
    Param("steps", "int", 500_000, min=1, max=10**10, doc="optimizer steps"),
    Param("batch", "int", 64, min=1, max=1_000_000, doc="prompts per step"),
    Param("lr", "float", None, min=1e-12, max=10.0, doc="learning rate (default: the task's, from the study)"),
    Param("optimizer", "choice", "adam", choices=("adam", "adamw")),
    Param("weight_decay", "float", 0.0, min=0.0, max=10.0),
    Param("clip", "float", None, min=1e-9, max=1e9, doc="gradient-norm clip (default: the task's)"),
    Param("seeds", "list[int]", (0,), min=0, max=2**31 - 1, doc="one run per seed"),
    Param("stop_error", "float", None, min=0.0, max=1e9, legacy=None,
          doc="stop a run at the first metrics line whose error (train.log_error prompts) is at or "
              "below this (needs log_error > 0); none: train every step"),
    Param("precision", "choice", "tf32", choices=("fp32", "tf32", "bf16"),
          doc="matrix products on CUDA: fp32, tf32 tensor cores, or a bf16-autocast forward "
              "(icl.training.precision); the CPU computes in fp32"),
    # How to run, not what to compute: left out of run ids (TRAIN_HOW_KEYS), so never swept.
    Param("checkpoint_every", "int", 1000, min=1, max=10**10, doc="steps between checkpoints",
          sweepable=False),
    Param("log_every", "int", 100, min=1, max=10**10, doc="steps between metric lines", sweepable=False),
    Param("log_error", "int", 0, min=0, max=1_000_000, sweepable=False,
          doc="fresh prompts (their own seed stream) scored at every metric line, whose mean task "
              "error the line records as `error` (time to accuracy); 0: off"),
    Param("tensorboard", "bool", False, sweepable=False,
          doc="also write each metrics line's scalars to <run>/tensorboard/ (TensorBoard event files; "
              "needs the tensorboard extra; $ICL_TENSORBOARD=1 turns it on without the spec)"),
    Param("backend", "choice", "auto", choices=("auto", "triton", "triton_seq", "reference"),
          doc="selective-scan kernel (auto: Triton on CUDA, reference on CPU)", sweepable=False),
    Param("device", "choice", "auto", choices=("auto", "cpu", "cuda"), sweepable=False),
    Param("compile", "choice", "off", choices=("off", "on"), sweepable=False,
          doc="the training step's forward under torch.compile (icl.training.compiled)"),
)

# Evaluation settings do not sweep: one evaluation per trained run and eval block.
EVAL_PARAMS: tuple[Param, ...] = (
    Param("prompts", "int", 1280, min=1, max=10**8, doc="fresh prompts, seeds disjoint from training's",
          sweepable=False),
    Param("bootstrap", "int", 1000, min=1, max=10**6, doc="bootstrap resamples for the 5%/95% band",
          sweepable=False),
    Param("batch", "int", 256, min=1, max=10**6, doc="prompts per forward pass", sweepable=False),
    Param("variants", "list[ref]", ("all",), doc="named variants of the task (all: every one it has)"),
    Param("baselines", "list[ref]", ("auto",), doc="classical baselines (auto: the task entry's own)"),
    Param("noise_sigmas", "list[float]", (0.1, 0.25, 0.5, 1.0, 2.0, 5.0), min=0.0, max=1e6,
          doc="query noise levels of MQAR's noisy_query variant"),
)

# Train keys that say how to run, not what to compute: left out of run ids.
TRAIN_HOW_KEYS = ("checkpoint_every", "log_every", "log_error", "tensorboard", "backend", "device", "seeds",
                  "compile")


@dataclass
class Checked:
    """A checked section: values by key, where each key was written, which were written here."""

    kind: str
    name: str | None
    pos: Pos | None
    values: dict[str, Any] = field(default_factory=dict)
    where: dict[str, Pos] = field(default_factory=dict)      # of each value
    key_where: dict[str, Pos] = field(default_factory=dict)  # of each key
    local: set[str] = field(default_factory=set)
    item_where: dict[str, list[Pos]] = field(default_factory=dict)  # positions of a sweep's values
    sub: dict[str, "Checked"] = field(default_factory=dict)


@dataclass
class Program:
    """A root spec with everything it imports, checked."""

    path: str
    files: dict[str, SpecFile]
    models: dict[str, Checked]
    tasks: dict[str, Checked]
    experiments: dict[str, Checked]  # of the root file only; imported experiments serve `extends`

    def error(self, pos: Pos | None, message: str, hint: str | None = None) -> SpecError:
        return _error(self.files, pos or Pos(self.path, 1, 1), message, hint)


def _error(files: dict[str, SpecFile], pos: Pos, message: str, hint: str | None) -> SpecError:
    """A SpecError at `pos`, with the source line when the file is loaded."""
    spec = files.get(pos.file)
    return SpecError(Where(pos.file, pos.line, pos.col, spec.line(pos.line) if spec else ""), message, hint)


def load(path: str | Path, allow_outside: bool | None = None) -> Program:
    """Parse `path` and its imports and check every declaration; report every independent error.

    Imports stay inside the project folder of `path` (`project_root`) unless `allow_outside`
    (or $ICL_ALLOW_OUTSIDE=1).
    """
    return _Loader(limits.allow_outside(allow_outside)).run(str(path))


def project_root(spec: str | Path) -> Path:
    """The project a spec belongs to: the nearest folder upward from it holding pyproject.toml or
    .git, else the spec's own folder. Imports may not leave it (issue #22)."""
    folder = Path(os.path.realpath(spec)).parent
    for candidate in (folder, *folder.parents):
        if (candidate / "pyproject.toml").exists() or (candidate / ".git").exists():
            return candidate
    return folder


def _within(path: str, folder: Path) -> bool:
    return os.path.commonpath([path, str(folder)]) == str(folder)


class _Loader:
    def __init__(self, allow_outside: bool = False) -> None:
        self.files: dict[str, SpecFile] = {}     # by the path as written (what errors show)
        self.seen: dict[str, str] = {}           # resolved path -> that written path
        self.decls: dict[tuple[str, str], Section] = {}
        self.allow_outside = allow_outside
        self.failed: set[tuple[str, str]] = set()  # (name, kind) of declarations that have errors
        self.root_dir = Path(".")
        self.errors = ErrorList(limits.MAX_ERRORS)

    def attempt(self, fn, *args):
        """fn(*args), or None with its errors collected: independent declarations are all checked."""
        try:
            return fn(*args)
        except SpecError as e:
            self.errors.add(e)
            return None

    def error(self, pos: Pos | None, message: str, hint: str | None = None) -> SpecError:
        return _error(self.files, pos or Pos("<unknown>", 1, 1), message, hint)

    # -- files and imports -------------------------------------------------
    def read(self, path: str, at: Pos | None, depth: int = 0) -> SpecFile:
        """Load `path` (imports first, in place) and declare its sections; `at`: the import naming it."""
        key = str(Path(path))
        # One file reached by two spellings (a/../b.icl, b.icl) is one file.
        resolved = os.path.realpath(key)
        if resolved in self.seen:
            return self.files[self.seen[resolved]]
        where = None
        if at is not None:
            where = Where(at.file, at.line, at.col, self.files[at.file].line(at.line))
            if depth > limits.MAX_IMPORT_DEPTH:
                raise SpecError(where, f"imports nested deeper than the limit of {limits.MAX_IMPORT_DEPTH} files")
            if len(self.files) >= limits.MAX_FILES:
                raise SpecError(where, f"more files imported than the limit of {limits.MAX_FILES}")
            if not self.allow_outside and not _within(resolved, self.root_dir):
                # Refused before reading: no byte of a file outside the project reaches an error message.
                raise SpecError(where, f"import {key} is outside the project folder {self.root_dir}",
                                f"imports stay inside the folder holding the spec's pyproject.toml or .git "
                                f"(else the spec's own folder); --allow-outside or "
                                f"{limits.ALLOW_OUTSIDE_ENV}=1 lifts this")
        spec = parse(read_source(key, where), key)
        self.files[key] = spec
        self.seen[resolved] = key
        for item in spec.items:
            if isinstance(item, Import):
                self.attempt(self.import_, key, item, depth)
            else:
                self.attempt(self.declare, item)
        return spec

    def import_(self, importer: str, item: Import, depth: int) -> None:
        """An import names a .icl file, relative to the importing file."""
        at = Where(item.pos.file, item.pos.line, item.pos.col, self.files[importer].line(item.pos.line))
        if "\0" in item.path:
            raise SpecError(at, "the import path holds a NUL byte")
        if not item.path.endswith(".icl"):
            raise SpecError(at, f"an import names a .icl file, not {item.path[:80]!r}")
        self.read(str(Path(importer).parent / item.path), item.pos, depth + 1)

    def declare(self, section: Section) -> None:
        if section.kind not in TOP_LEVEL:
            raise self.error(section.pos, f"unknown section '{section.kind}'",
                             did_you_mean(section.kind, TOP_LEVEL))
        if section.name is None:
            raise self.error(section.pos, f"a top-level '{section.kind}' needs a name",
                             f"write: {section.kind} NAME {{ ... }}")
        key = (section.kind, section.name)
        if key in self.decls:
            first = self.decls[key].name_pos
            raise self.error(section.name_pos, f"duplicate {section.kind} '{section.name}'",
                             f"first defined at {first.file}:{first.line}:{first.col}")
        self.decls[key] = section

    # -- extends -----------------------------------------------------------
    def chain(self, section: Section) -> list[Section]:
        """The sections to merge for `section`, base first and the section itself last (iterative,
        at most MAX_EXTENDS long)."""
        chain = [section]
        seen: set[str] = set()
        current = section
        while current.base is not None:
            if current.base in seen or current.base == current.name:
                raise self.error(current.base_pos, f"'{current.name}' extends itself through '{current.base}'",
                                 "remove the cycle of extends")
            if len(chain) >= limits.MAX_EXTENDS:
                raise self.error(section.base_pos, f"'{section.name}' extends a chain of more than "
                                                   f"{limits.MAX_EXTENDS} sections, the limit")
            base = self.decls.get((current.kind, current.base))
            if base is None:
                if current.kind == "task" and current.base in TASKS:
                    break  # extends a registered task kind: that is its kind
                names = [n for (k, n) in self.decls if k == current.kind]
                raise self.error(current.base_pos, f"unknown {current.kind} '{current.base}' in extends",
                                 did_you_mean(current.base, names))
            seen.add(current.name or "")
            chain.append(base)
            current = base
        chain.reverse()
        return chain

    def run(self, path: str) -> Program:
        self.root_dir = project_root(path)
        root = self.read(path, None)
        self.errors.raise_any()  # a file that does not load leaves its names undeclared: stop here
        models = self.checked("model", self.model)
        tasks = self.checked("task", self.task)
        experiments = {}
        for item in root.items:
            if isinstance(item, Section) and item.kind == "experiment":
                # A task kind named directly in an experiment is its default-valued task.
                for name in self.attempt(self.referenced_tasks, item) or ():
                    if name not in tasks and name in TASKS and (name, "task") not in self.failed:
                        default = self.attempt(self.task, Section("task", name, None, (), item.pos, item.pos))
                        if default is None:
                            self.failed.add((name, "task"))
                        else:
                            tasks[name] = default
        for item in root.items:
            if isinstance(item, Section) and item.kind == "experiment" and item.name not in experiments:
                checked = self.attempt(self.experiment, item, models, tasks)
                if checked is not None:
                    experiments[item.name] = checked
        # Presets are checked even when unused, so their mistakes surface at once.
        for (k, n), s in self.decls.items():
            if k in ("train", "eval"):
                self.attempt(lambda kind, section: self.preset(kind, self.chain(section)), k, s)
        self.errors.raise_any()
        return Program(str(Path(path)), self.files, models, tasks, experiments)

    def checked(self, kind: str, check) -> dict[str, Checked]:
        """Every declaration of `kind` checked; those with errors are left out and remembered."""
        out = {}
        for (k, n), s in self.decls.items():
            if k == kind:
                result = self.attempt(check, s)
                if result is None:
                    self.failed.add((n, kind))
                else:
                    out[n] = result
        return out

    def referenced_tasks(self, experiment: Section) -> list[str]:
        names = []
        for s in self.chain(experiment):
            for a in s.assignments():
                if a.key == "tasks":
                    items = a.value.items if isinstance(a.value, List) else (a.value,)
                    names += [getattr(v, "name", None) for v in items]
        return [n for n in names if n]

    # -- checking sections --------------------------------------------------
    def check(self, chain: list[Section], params: tuple[Param, ...], what: str,
              allowed_sub: tuple[str, ...] = (), choices: dict[str, tuple[str, ...]] | None = None,
              extra_keys: dict[str, Param] | None = None) -> Checked:
        """Merge a chain of sections (base first) and check each key once, where it was written."""
        own = chain[-1]
        out = Checked(own.kind, own.name, own.pos)
        by_name = {p.name: p for p in params}
        if extra_keys:
            by_name.update(extra_keys)
        # Each entry's mistake is independent of the others': report them all, then stop.
        errors = ErrorList(limits.MAX_ERRORS)
        for section in chain:
            seen_here: dict[str, Pos] = {}
            for entry in section.entries:
                if isinstance(entry, Section):
                    if entry.kind not in allowed_sub:
                        hint = did_you_mean(entry.kind, allowed_sub) if allowed_sub else \
                            f"'{what}' has no nested sections"
                        errors.add(self.error(entry.pos, f"unknown section '{entry.kind}' in {what}", hint))
                    continue
                if entry.key in seen_here:
                    first = seen_here[entry.key]
                    errors.add(self.error(entry.pos, f"duplicate key '{entry.key}' in {what}",
                                          f"first set at line {first.line}"))
                    continue
                seen_here[entry.key] = entry.pos
                param = by_name.get(entry.key)
                if param is None:
                    errors.add(self.error(entry.pos, f"unknown key '{entry.key}' in {what}",
                                          did_you_mean(entry.key, by_name)))
                    continue
                try:
                    out.values[entry.key] = self.value(param, entry, (choices or {}).get(entry.key))
                except SpecError as e:
                    errors.add(e)
                    continue
                out.where[entry.key] = entry.value.pos or entry.pos
                out.key_where[entry.key] = entry.pos
                if isinstance(entry.value, List):
                    out.item_where[entry.key] = [item.pos for item in entry.value.items]
                if section is own:
                    out.local.add(entry.key)
        errors.raise_any()
        for p in by_name.values():
            if p.name not in out.values:
                if p.required:
                    raise self.error(own.pos, f"{what} '{own.name}' is missing '{p.name}'",
                                     p.doc or None)
                out.values[p.name] = p.default
        return out

    def value(self, param: Param, entry: Assignment, choices: tuple[str, ...] | None) -> Any:
        try:
            return check_value(param, entry.value, choices)
        except BadValue as e:
            raise self.error((e.node.pos if e.node is not None else None) or entry.pos, e.message, e.hint) from None

    def subsections(self, chain: list[Section], kind: str) -> list[Section]:
        """Nested sections of one kind along an extends chain (base first); duplicates are errors."""
        found = []
        for section in chain:
            here = [s for s in section.sections() if s.kind == kind]
            if len(here) > 1:
                raise self.error(here[1].pos, f"duplicate section '{kind}' in '{section.name or section.kind}'")
            found += here
        return found

    def unnamed(self, section: Section, hint: str | None = None) -> None:
        """Nested sections other than train/eval take neither a name nor `extends`."""
        if section.name is not None:
            raise self.error(section.name_pos, f"'{section.kind}' here takes no name", hint)
        if section.base is not None:
            raise self.error(section.base_pos, f"'{section.kind}' here cannot extend anything", hint)

    # -- models ------------------------------------------------------------
    def model(self, section: Section) -> Checked:
        chain = self.chain(section)
        params = MODEL_OPTIONS + tuple(BLOCK_OPTIONS.values())
        checked = self.check(chain, params, "model")
        checked.values["layers"] = self.layers(checked, "layers")
        used = {t for layers in _each(checked.values["layers"]) for t in layers.split()}
        for key in checked.local:
            if key in BLOCK_OPTIONS and not any(key in BLOCKS[t].options for t in used):
                users = ", ".join(users_of(key))
                raise self.error(checked.key_where[key],
                                 f"option '{key}' has no effect: no block in this model's layers reads it",
                                 f"'{key}' is read by: {users}")
        if checked.values["width"] is None and checked.values["params"] is None:
            raise self.error(section.name_pos, f"model '{section.name}' needs a width or a parameter budget",
                             "add width = 256 or params = 10M")
        if checked.values["width"] is not None and checked.values["params"] is not None:
            raise self.error(checked.key_where["params"], "give either width or params, not both",
                             "params picks the width that meets the budget")
        return checked

    def layers(self, checked: Checked, key: str) -> Any:
        """Expand the layer string(s); errors point inside the string."""
        pos = checked.where[key]

        def one(text: str, at: Pos) -> str:
            try:
                tokens = expand(text)
            except LayerSyntaxError as e:
                raise self.error(_inside(at, e.offset), e.message, e.hint) from None
            for tok in tokens:
                if tok.token not in BLOCKS:
                    known = ", ".join(f"{t} ({b.name})" for t, b in BLOCKS.items())
                    hint = did_you_mean(tok.token, BLOCKS)
                    hint = (hint + "; " if hint and hint.startswith("did") else "") + f"known tokens: {known}"
                    raise self.error(_inside(at, tok.offset), f"unknown layer token '{tok.token}'", hint)
            return flat(tokens)

        value = checked.values[key]
        if isinstance(value, Sweep):
            where = checked.item_where[key]
            layers = tuple(one(v, p) for v, p in zip(value.values, where))
            # Values compare after normalisation: "M*4" and "M M M M" are one model, as 1e-3 and 0.001 are one lr.
            repeat = first_repeat(layers)
            if repeat is not None:
                i, j = repeat
                raise self.error(where[i], repeat_message(key, format_value(String(value.values[i])),
                                                          format_value(String(value.values[j]))),
                                 "remove the repeat")
            return Sweep(layers)
        return one(value, pos)

    # -- tasks -------------------------------------------------------------
    def task(self, section: Section) -> Checked:
        chain = self.chain(section)
        kind_param = Param("kind", "choice", None, choices=tuple(TASKS), sweepable=False)
        root = chain[0]
        kind_name = root.base if root.base in TASKS else None
        for s in chain:  # the kind decides which keys exist, so find it first
            for a in s.assignments():
                if a.key == "kind":
                    value = self.value(kind_param, a, None)
                    if kind_name is not None and value != kind_name:
                        raise self.error(a.value.pos, f"task '{section.name}' is a {kind_name}; "
                                                      f"its kind cannot change to {value}",
                                         "declare a new task instead of extending this one")
                    kind_name = value
        if kind_name is None:
            if section.name in TASKS:
                kind_name = section.name
            else:
                raise self.error(section.name_pos, f"task '{section.name}' does not say which task it is",
                                 "add kind = linear_regression (or any of: " + ", ".join(TASKS) + ")")
        kind = TASKS[kind_name]
        checked = self.check(chain, kind.params, f"task '{section.name}' ({kind_name})", ("curriculum",),
                             extra_keys={"kind": kind_param})
        checked.values["kind"] = kind_name
        checked.sub["curriculum"] = self.curriculum(chain, kind_name, checked)
        return checked

    def curriculum(self, chain: list[Section], kind_name: str, task: Checked) -> Checked:
        kind = TASKS[kind_name]
        sections = self.subsections(chain, "curriculum")
        out = Checked("curriculum", None, sections[-1].pos if sections else None)
        axes: dict[str, list[Section]] = {}
        for s in sections:
            self.unnamed(s)
            here: set[str] = set()
            for entry in s.entries:
                if isinstance(entry, Assignment):
                    raise self.error(entry.pos, f"unknown key '{entry.key}' in curriculum",
                                     "a curriculum holds one section per axis: dims { ... } points { ... }")
                if entry.kind not in kind.curriculum:
                    axes_known = tuple(kind.curriculum) or ()
                    hint = ("axes of this task: " + ", ".join(axes_known)) if axes_known \
                        else f"{kind_name} has fixed sizes and no curriculum"
                    raise self.error(entry.pos, f"unknown curriculum axis '{entry.kind}' for {kind_name}", hint)
                self.unnamed(entry)
                if entry.kind in here:
                    raise self.error(entry.pos, f"duplicate curriculum axis '{entry.kind}'")
                here.add(entry.kind)
                axes.setdefault(entry.kind, []).append(entry)
        for axis, default in kind.curriculum.items():
            checked = self.check(axes.get(axis, []) or [Section(axis, None, None, ())], CURRICULUM_PARAMS,
                                 f"curriculum axis '{axis}'")
            limit = task.values[axis]
            if isinstance(limit, Sweep):  # an explicit curriculum must fit every swept size
                limit = min(limit.values)
            values = {
                "start": checked.values["start"] if checked.values["start"] is not None else min(default.start, limit),
                "end": checked.values["end"] if checked.values["end"] is not None else limit,
                "inc": checked.values["inc"] if checked.values["inc"] is not None else default.inc,
                "interval": checked.values["interval"] if checked.values["interval"] is not None
                else default.interval,
            }
            if values["start"] > values["end"]:
                raise self.error(checked.where.get("start", out.pos),
                                 f"curriculum {axis} starts at {values['start']}, after its end {values['end']}")
            if values["end"] > limit:
                raise self.error(checked.where.get("end", out.pos),
                                 f"curriculum {axis} ends at {values['end']}, beyond the task's {axis} = {limit}",
                                 f"raise the task's {axis} or lower the end")
            out.values[axis] = values
            out.where.update({f"{axis}.{k}": v for k, v in checked.where.items()})
        return out

    # -- train / eval presets and experiments -------------------------------
    def preset(self, kind: str, chain: list[Section]) -> Checked:
        params = TRAIN_PARAMS if kind == "train" else EVAL_PARAMS
        return self.check(chain, params, kind)

    def nested_preset(self, kind: str, experiment_chain: list[Section]) -> Checked:
        """An experiment's train/eval: its `extends` preset, then what each experiment in the chain sets."""
        chain: list[Section] = []
        for s in self.subsections(experiment_chain, kind):
            if s.name is not None:
                raise self.error(s.name_pos, f"a '{kind}' inside an experiment takes no name",
                                 f"write: {kind} extends {s.name} {{ ... }} to reuse a preset")
            if s.base is not None:
                base = self.decls.get((kind, s.base))
                if base is None:
                    names = [n for (k, n) in self.decls if k == kind]
                    raise self.error(s.base_pos, f"unknown {kind} preset '{s.base}'", did_you_mean(s.base, names))
                chain += self.chain(base)
            chain.append(s)
        if not chain:
            chain = [Section(kind, None, None, ())]
        return self.preset(kind, chain)

    def experiment(self, section: Section, models: dict[str, Checked], tasks: dict[str, Checked]) -> Checked | None:
        chain = self.chain(section)
        params = (
            Param("models", "list[ref]", None, required=True, sweepable=False),
            Param("tasks", "list[ref]", None, required=True, sweepable=False),
        )
        # Every declared name is a valid reference, also one whose declaration has errors (those are
        # reported already): the experiment's own mistakes are still found, its runs never made.
        model_names = tuple(n for (k, n) in self.decls if k == "model")
        task_names = tuple(sorted({n for (k, n) in self.decls if k == "task"} | set(TASKS)))
        checked = self.check(chain, params, "experiment", ("train", "eval"),
                             choices={"models": model_names, "tasks": task_names})
        if any(m not in models for m in checked.values["models"]) or \
                any(t not in tasks and (t not in TASKS or (t, "task") in self.failed) for t in checked.values["tasks"]):
            self.attempt(self.nested_preset, "train", chain)
            self.attempt(self.nested_preset, "eval", chain)
            return None  # it names a declaration with errors: no runs to check
        checked.sub["train"] = self.nested_preset("train", chain)
        train = checked.sub["train"]
        if train.values["stop_error"] is not None and not train.values["log_error"]:
            raise self.error(train.where.get("stop_error", section.pos),
                             "train.stop_error reads the error of train.log_error prompts, which is off",
                             "set log_error = N (N > 0 prompts scored at each metrics line)")
        checked.sub["eval"] = self.nested_preset("eval", chain)
        for variant in checked.sub["eval"].values["variants"]:
            valid = {"all"}
            for t in checked.values["tasks"]:
                kind = tasks[t].values["kind"] if t in tasks else t
                valid |= set(TASKS[kind].variants)
            if variant not in valid:
                raise self.error(checked.sub["eval"].where["variants"],
                                 f"unknown evaluation variant '{variant}' for the tasks of '{section.name}'",
                                 did_you_mean(variant, valid))
        self.check_baselines(checked, tasks)
        return checked

    def check_baselines(self, experiment: Checked, tasks: dict[str, Checked]) -> None:
        """Named baselines must exist and apply to every task of the experiment."""
        evaluation = experiment.sub["eval"]
        named = [b for b in evaluation.values["baselines"] if b != "auto"]
        if not named:
            return  # the default: each task's own (its catalog entry's `baselines`)
        kinds = {tasks[t].values["kind"] if t in tasks else t for t in experiment.values["tasks"]}
        for name in named:
            for kind in sorted(kinds):
                try:
                    check_baseline(name, kind)
                except ValueError as error:
                    raise self.error(evaluation.where["baselines"], str(error)) from None


def _inside(pos: Pos, offset: int) -> Pos:
    """The position of a character inside a string literal (after its opening quote)."""
    return Pos(pos.file, pos.line, pos.col + 1 + offset)


def _each(value: Any) -> tuple:
    return value.values if isinstance(value, Sweep) else (value,)


