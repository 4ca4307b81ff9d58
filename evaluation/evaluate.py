"""Evaluate one trained run: error at every prompt position, with bootstrap bands, beside baselines.

`evaluate_run(run, run_dir, out_path)` loads `run_dir/model.pt`, draws
`run.eval["prompts"]` fresh prompts at the curriculum's end sizes, and writes one
JSON file (atomically) with the model's per-position error curve and its 5%/95%
bootstrap band, the classical baselines' curves on the very same prompts, the named
evaluation variants, and summary numbers for a Table-1 verdict. What is evaluated beyond the
model's error is the task's catalog entry (tasks/catalog.py): its baselines, its extra metrics,
its read-out (once per example, or once per prompt) and how its variants are run.

Prompt seeds: prompts are drawn in chunks of `eval.batch`; chunk i uses the seed
`stream_seed("eval", EVAL_SEED, i)` (training/seeds.py), a range no training seed can
reach. The seeds do not depend on the run, so every model of a study evaluated with the
same eval settings (and every variant, re-sampled with the same seeds) is scored on the
very same prompts.

The evaluation also records the run's training convergence (`convergence`: is the loss in its
metrics.jsonl still falling over the last 10% of steps? evaluation/convergence.py), which the
report's Table 1 reads (report/table1.py).

The run folder's files are read through icl/runfolder.py (a bad status.json or model.pt is a
one-line error naming it), and the run's lock is held while evaluating, so a training or
another evaluation of the same run cannot write into its folder meanwhile.
"""
from __future__ import annotations

import math
import platform
import sys
import time
from pathlib import Path
from typing import Callable

import torch

import icl
from icl.compiler.build import build_for_run
from icl.compiler.runs import eval_settings, train_settings
from icl.evaluation.baseline_cache import BaselineCache
from icl.evaluation.bootstrap import bootstrap_bands
from icl.evaluation.convergence import run_convergence
from icl import runfolder
from icl.tasks.catalog import TASKS, TaskKind, check_baseline
from icl.training.curriculum import end_sizes
from icl.training.device import resolve_device
from icl.training.errors import RunError
from icl.training.precision import autocast, matmul_precision, precision_of
from icl.training.seeds import stream_seed
from icl.run import Run

EVAL_SEED = 0
# The validation set: prompts of their own stream (never the test prompts), a quarter as many
# as the test set; the report picks a cell's best learning rate (any swept value) by them.
VALIDATION_FRACTION = 0.25


def eval_seeds(prompts: int, batch: int, stream: str = "eval") -> list[int]:
    """The generator seed of every chunk of `batch` prompts an evaluation of `prompts` draws
    from `stream` ("eval": the test prompts; "validation")."""
    return [stream_seed(stream, EVAL_SEED, i) for i in range(math.ceil(prompts / batch))]


def validation_prompts(prompts: int) -> int:
    return max(1, math.ceil(prompts * VALIDATION_FRACTION))


def evaluate_run(run: Run, run_dir: Path, out_path: Path, *, device: str | None = None,
                 prompts: int | None = None, progress: bool = True,
                 model_factory: Callable | None = None, baseline_cache: Path | None = None,
                 evaluated_with: list[str] | None = None) -> dict:
    """Evaluate the model trained in `run_dir`; writes and returns the evaluation dict.
    `baseline_cache`: a folder where baselines' errors are kept for the evaluations of other
    runs on the same prompts (evaluation/baseline_cache.py); None computes them here.
    `evaluated_with`: the run ids of the call evaluating this one with others, recorded
    (default: this run alone)."""
    run_dir, out_path = Path(run_dir), Path(out_path)
    if not run_dir.is_dir():
        raise RunError(f"run {run.id} has no trained model at {run_dir / runfolder.MODEL}; train it first")
    with runfolder.run_lock(run_dir, run.id, "evaluation"):
        return _evaluate_locked(run, run_dir, out_path, device, prompts, progress, model_factory,
                                baseline_cache, list(evaluated_with or [run.id]))


def _evaluate_locked(run, run_dir, out_path, device, prompts, progress, model_factory, baseline_cache,
                     evaluated_with) -> dict:
    started = time.perf_counter()
    eval_config = eval_settings(run)
    n_prompts = int(prompts if prompts is not None else eval_config["prompts"])
    if n_prompts < 1:
        raise RunError(f"run {run.id}: evaluation needs at least 1 prompt, got {n_prompts}")
    resamples = int(eval_config["bootstrap"])
    head = {"run_id": run.id, "eval_id": run.eval_id, "experiment": run.experiment,
            "model_name": run.model, "layers": run.layers, "task": run.task,
            "seed": run.seed, "sweep": run.sweep, "evaluated_with": evaluated_with}

    status_record = runfolder.read_status(run_dir, run.id)
    status = status_record.data if status_record is not None else None
    if status_record is not None and status_record.state == "diverged":
        result = {**head, "state": "diverged", "message": status_record.message or "training diverged",
                  "step": status_record.step, "positions": [], "model": None, "baselines": {},
                  "variants": {}, "summary": None, "prompts": 0}
        runfolder.write_eval(out_path, result)
        return result

    saved = runfolder.load_model(run_dir, run.id)
    if saved is None:
        raise RunError(f"run {run.id} has no trained model at {run_dir / runfolder.MODEL}; train it first")
    dev = resolve_device(device if device is not None else train_settings(run)["device"])
    model, task, layout = build_for_run(run, model_factory)
    try:
        model.load_state_dict(saved["model"])
    except RuntimeError as error:  # weights of another architecture (the first line says which)
        raise RunError(f"{run_dir / runfolder.MODEL}: does not fit run {run.id}'s model "
                       f"({str(error).splitlines()[0]})") from None
    model.to(dev).eval()

    kind = TASKS[run.kind]
    sizes = end_sizes(run.task_config)
    baselines = _baselines_for(run, kind)
    batch = int(eval_config["batch"])
    if batch < 1:
        raise RunError(f"run {run.id}: eval.batch must be >= 1, got {batch}")
    cache = BaselineCache(baseline_cache, task, run.task_config, sizes, n_prompts, batch, dev)
    scorer = _Scorer(task, kind, model, sizes, n_prompts, batch, dev, baselines, cache, progress,
                     run.id, precision_of(run))

    result = {**head, "state": "done", "metric": task.metric_name,
              "reports_accuracy": bool(getattr(task, "reports_accuracy", False)),
              "prompts": n_prompts, "bootstrap": resamples, "batch": batch,
              "dims": sizes["dims"], "points": sizes["points"], "trained_steps": saved.get("step")}
    result.update(_block(scorer.score(None), resamples, kind, sizes))
    # The model alone on the validation prompts (no baselines, no variants): a number to
    # choose among a cell's configurations without looking at the test prompts.
    n_validation = validation_prompts(n_prompts)
    validator = _Scorer(task, kind, model, sizes, n_validation, batch, dev, {}, cache, progress,
                        run.id, precision_of(run), stream="validation")
    validation = validator.score(None)["model"]
    result["validation"] = {"prompts": n_validation,
                            "model_tail": _tail_mean(bootstrap_bands(validation, 0, None)["mean"].tolist(),
                                                     kind.tail_fraction)}
    variants, skipped = _readable_variants(_expand_variants(run, kind), kind, model, layout)
    result["variants"] = {
        name: _block(scorer.score(variant), resamples, kind, sizes, bins=kind.variant_bins.get(variant))
        for name, variant in variants}
    if skipped:
        result["variants_skipped"] = skipped

    result["train_status"] = {k: status.get(k) for k in ("state", "steps_done", "steps_planned", "capped",
                                                          "stopped_early")} if status else None
    result["convergence"] = training_convergence(run_dir, status)
    result["device"] = str(dev)
    result["wall_s"] = time.perf_counter() - started
    result["versions"] = {"torch": torch.__version__, "python": platform.python_version(),
                          "icl": getattr(icl, "__version__", "unknown")}
    result = _jsonable(result)
    runfolder.write_eval(out_path, result)
    return result


def training_convergence(run_dir: Path, status: dict | None = None) -> dict:
    """The run's training convergence (evaluation/convergence.py) from its metrics.jsonl:
    {"state": "converged" | "not converged" | "unknown", "drop", "t", "points"}; a folder
    without logged losses, or too few in the last 10% of steps, is "unknown". A run that
    train.stop_error ended (status `stopped_early`) reached the error it was trained for: it
    is "converged", with `stopped_early` said (its loss may still have been falling)."""
    found = run_convergence(runfolder.read_metrics(run_dir)).as_dict()
    stopped = (status or {}).get("stopped_early")
    if stopped:
        return {**found, "state": "converged", "stopped_early": stopped}
    return found


class _Scorer:
    """Draws the evaluation prompts of one variant and scores the model and baselines on them."""

    def __init__(self, task, kind: TaskKind, model, sizes, n_prompts, batch, dev, baselines, cache,
                 progress, run_id, precision, stream: str = "eval"):
        self.task, self.kind, self.model, self.sizes, self.precision = task, kind, model, sizes, precision
        self.stream = stream
        self.n_prompts, self.batch, self.dev = n_prompts, batch, dev
        self.baselines, self.cache, self.progress, self.run_id = baselines, cache, progress, run_id

    @torch.no_grad()
    def score(self, variant) -> dict:
        """Errors on the eval prompts of `variant`: {"model": (N, P), "baselines": {name: (n_b, P)},
        "metrics": {name: (N, P)} (the task entry's extra metrics), "bins": (N,) or None (the
        index each prompt is binned by, for a variant the entry bins)}.

        Chunk i holds `batch` prompts drawn with seed eval_seeds(...)[i]; the last chunk is
        drawn whole and cut, so its prompts do not depend on how many are asked for. A
        baseline with a `max_prompts` cap scores the first prompts until it has that many."""
        model_errors, bins = [], []
        cached = {name: self.cache.load(variant, name) for name in self.baselines}
        base_errors = {name: [] for name in self.baselines if cached[name] is None}
        metrics = {name: getattr(self.task, f"{name}_error") for name in self.kind.metrics}
        metric_errors = {name: [] for name in metrics}
        binned = self.kind.variant_bins.get(variant)
        bar = None
        if self.progress:
            from tqdm import tqdm
            label = f"{self.stream} {self.run_id}" + (f" [{variant}]" if variant else "")
            bar = tqdm(total=self.n_prompts, desc=label, unit="prompt", file=sys.stderr,
                       dynamic_ncols=True)
        left = self.n_prompts
        for seed in eval_seeds(self.n_prompts, self.batch, self.stream):
            generator = torch.Generator(device=self.dev)
            generator.manual_seed(seed)
            prompts = self.task.sample(generator, self.batch, dims=self.sizes["dims"],
                                       points=self.sizes["points"], variant=variant)
            keep = min(left, self.batch)
            left -= keep
            with matmul_precision(self.precision, self.dev), autocast(self.precision, self.dev):
                pred = self.task.predict(self.model, prompts)
            model_errors.append(_host(self.task.error(pred, prompts)[:keep]))
            for name, metric in metrics.items():
                metric_errors[name].append(_host(metric(pred, prompts)[:keep]))
            if binned is not None:
                bins.append(prompts.info[binned.info][:keep].cpu())
            for name in base_errors:
                baseline = self.baselines[name]
                have = sum(e.shape[0] for e in base_errors[name])
                want = min(keep, _baseline_cap(baseline, self.n_prompts) - have)
                if want <= 0:
                    continue
                part = prompts.head(want)
                guess = baseline.predict(part).to(pred.device, torch.float32)
                base_errors[name].append(_host(self.task.error(guess, part)))
            if bar is not None:
                bar.update(keep)
        if bar is not None:
            bar.close()
        computed = {n: torch.cat(e) for n, e in base_errors.items() if e}
        for name, errors in computed.items():
            self.cache.save(variant, name, errors)
        scored = {n: cached[n] if cached[n] is not None else computed.get(n) for n in self.baselines}
        return {"model": torch.cat(model_errors),
                "baselines": {n: e for n, e in scored.items() if e is not None},
                "metrics": {n: torch.cat(e) for n, e in metric_errors.items()},
                "bins": torch.cat(bins) if bins else None}


def _host(errors: torch.Tensor) -> torch.Tensor:
    return errors.detach().to("cpu", torch.float64)


def _binned(errors: torch.Tensor, index: torch.Tensor, count: int) -> torch.Tensor:
    """(N, 1) errors of prompts binned at index[n] -> (N, count), NaN elsewhere, so the
    per-position curve is the error by that index (vector MQAR: the key the query copies)."""
    spread = torch.full((errors.shape[0], count), float("nan"), dtype=errors.dtype)
    return spread.scatter(1, index.view(-1, 1), errors[:, :1])


def _block(scored: dict, resamples: int, kind: TaskKind, sizes: dict, bins=None) -> dict:
    """One evaluation's curves: positions, model and baseline bands, summary (+ the task entry's
    extra metrics); `bins`, a VariantBins of the entry, bins them by the prompts' index."""
    errors = {"model": scored["model"], **{f"baseline:{n}": e for n, e in scored["baselines"].items()},
              **{f"metric:{n}": e for n, e in scored["metrics"].items()}}
    if bins is not None:
        count = int(sizes["points"])
        errors = {k: _binned(e, scored["bins"][:e.shape[0]], count) for k, e in errors.items()}
        positions = list(range(count))
    else:
        positions = _positions(kind, sizes, scored["model"].shape[1])
    curves = {}
    for key, values in errors.items():
        # the same resampling stream for every curve: model and baselines resample alike
        generator = torch.Generator().manual_seed(stream_seed("bootstrap", EVAL_SEED))
        curves[key] = {k: v.tolist() for k, v in bootstrap_bands(values, resamples, generator).items()}
        curves[key]["prompts"] = int(values.shape[0])
    block = {"positions": positions, "model": curves.pop("model"),
             "baselines": {k.split(":", 1)[1]: v for k, v in curves.items() if k.startswith("baseline:")}}
    if bins is not None:
        block["position_meaning"] = bins.meaning
    for key, curve in curves.items():
        if key.startswith("metric:"):
            block[key.split(":", 1)[1]] = curve
    block["summary"] = _summary(block["model"], block["baselines"], kind.tail_fraction)
    return block


def _tail_mean(curve: list[float], fraction: float) -> float | None:
    """Mean over the last `fraction` (at least one) of the positions that have a value (the
    task's TaskKind.tail_fraction: a quarter, or every query of token MQAR).

    Positions with no counted prompt (e.g. Garg's orthogonal-subspace shift scores only the
    first d queries) are left out before the share is taken."""
    values = [v for v in curve if v is not None and not math.isnan(v)]
    if not values:
        return None
    count = max(1, math.ceil(len(values) * fraction))
    return sum(values[-count:]) / count


def _summary(model: dict, baselines: dict, fraction: float) -> dict:
    """Numbers a Table-1 verdict reads: tail and final errors of the model and the best baseline."""
    tails = {name: _tail_mean(b["mean"], fraction) for name, b in baselines.items()}
    scored = {n: v for n, v in tails.items() if v is not None}
    best = min(scored, key=scored.get) if scored else None
    model_tail = _tail_mean(model["mean"], fraction)
    return {
        "tail_fraction": fraction,
        "model_tail": model_tail,
        "model_final": model["mean"][-1] if model["mean"] else None,
        "baselines_tail": tails,
        "best_baseline": best,
        "best_baseline_tail": scored.get(best) if best else None,
        "model_minus_best_baseline": (model_tail - scored[best]) if best and model_tail is not None else None,
    }


def _positions(kind: TaskKind, sizes: dict, count: int) -> list[int]:
    """In-context examples seen at each read-out position (position p has seen p examples).

    A task read out once after all its pairs (the entry's readout "once") has seen every pair."""
    if kind.readout == "once":
        return [int(sizes["points"])]
    return list(range(count))


def _expand_variants(run: Run, kind: TaskKind) -> list[tuple[str, str]]:
    """(result name, variant passed to Task.sample) for each variant the run asks for; a variant
    the entry sweeps gives one per value of its eval setting ("noisy_query:0.5")."""
    expanded = []
    settings = eval_settings(run)
    for name in settings["variants"] or []:
        if name not in kind.variants:
            raise RunError(f"run {run.id}: task {kind.name} has no evaluation variant {name!r}; "
                           f"known: {', '.join(kind.variants) or 'none'}")
        sweep = kind.variant_sweeps.get(name)
        if sweep is not None:
            values = settings.get(sweep.setting) or []
            expanded.extend((f"{name}:{v:g}", f"{name}:{v:g}") for v in values)
        else:
            expanded.append((name, name))
    return expanded


def _readable_variants(variants: list[tuple[str, str]], kind: TaskKind, model, layout):
    """(the variants the model can read, {name: why not} for the others): a length-generalisation
    variant (catalog `variant_lengths`) is longer than a learned position table's rows."""
    positions = getattr(model, "positions", None)
    rows = positions.table.num_embeddings if positions is not None else None
    readable, skipped = [], {}
    for name, variant in variants:
        factor = kind.variant_lengths.get(variant.partition(":")[0])
        if factor is not None and rows is not None and factor * layout.tokens > rows:
            skipped[name] = (f"prompts of {factor * layout.tokens} tokens, {factor}x the trained length; "
                             f"the model's learned position table has {rows} rows")
        else:
            readable.append((name, variant))
    return readable, skipped


def _baselines_for(run: Run, kind: TaskKind) -> dict:
    """The baseline objects a run asks for ("auto" = its task entry's `baselines`); one whose
    package is not installed is replaced by its fallback (baselines.usable, with a warning)."""
    asked = list(eval_settings(run)["baselines"] or [])
    if not asked:
        return {}
    from icl.evaluation.baselines import BASELINES, applicable, usable

    names = []
    for name in asked:
        if name == "auto":
            names.extend(n for n in applicable(kind.name) if n not in names)
            continue
        try:
            check_baseline(name, kind.name)
        except ValueError as error:
            raise RunError(f"run {run.id}: {error}") from None
        if usable(name) not in names:
            names.append(usable(name))
    return {name: BASELINES[name] for name in names}


def _baseline_cap(baseline, n_prompts: int) -> int:
    cap = getattr(baseline, "max_prompts", None)
    return n_prompts if cap is None else min(n_prompts, int(cap))


def _jsonable(obj):
    """NaN and Inf become null, so the file is strict JSON."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    return obj
