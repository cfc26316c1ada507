"""``edge-rec benchmark``: what a device will see from bundles and ``.tflite`` models.

Runs without TensorFlow (numpy, click, a TFLite interpreter and ``edge_rec.data`` only). Each
target is measured in a fresh child process by :mod:`device_runtime.benchmarking.child`; this
module only validates the command line, prepares the evaluation examples, checks the profile's
budgets and writes the outputs. Exit status: 0 when every target was measured and passed its
budgets, 1 when a budget failed or a target could not be measured, 2 for usage errors.
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

import click

from device_runtime.benchmarking.child import ChildProcessError, run_in_fresh_process
from device_runtime.benchmarking.device_profile import (
    BUILTIN_PROFILES,
    ProfileError,
    check_budgets,
    load_profile,
)
from device_runtime.benchmarking.engine import (
    BenchmarkSettings,
    EvalExamples,
    file_sizes,
    target_kind,
)
from device_runtime.benchmarking.report import (
    benchmark_document,
    format_table,
    write_json,
    write_markdown,
)
from device_runtime.interpreter import BACKENDS
from edge_rec.commands.options import ChoiceOrFile, data_format_option, json_option, quiet_option


def load_eval_examples(path: Path, data_format: str, *, min_user_interactions: int,
                       min_item_interactions: int) -> EvalExamples:
    """The leave-last-out test split of the interaction log at ``path`` as :class:`EvalExamples`:
    per user, the full history ``seq[:-1]`` and the target ``seq[-1]``, as external ids and as
    indices of the vocabulary that ``prepare_dataset`` builds (the one training used)."""
    from edge_rec.data import load_interactions, prepare_dataset

    log = load_interactions(path, format=data_format)
    dataset = prepare_dataset(log, min_user_interactions=min_user_interactions,
                              min_item_interactions=min_item_interactions)
    test = dataset.split().eval_set("test", 1)  # histories unused: `seen` is the full history
    ids = dataset.vocab.ids
    histories = [[int(i) for i in seen] for seen in test.seen]
    targets = [int(t) for t in test.targets]
    return EvalExamples(
        source=str(path),
        histories=[[ids[i] for i in history] for history in histories],
        targets=[ids[t] for t in targets],
        history_indices=histories,
        target_indices=targets,
        catalog_size=dataset.vocab.size,
    )


@click.command(name="benchmark")
@click.argument("targets", nargs=-1, required=True, type=click.Path(exists=True, path_type=Path))
@click.option("--runs", type=click.IntRange(min=1), default=200, show_default=True,
              help="Timed calls per latency measurement.")
@click.option("--warmup", type=click.IntRange(min=0), default=20, show_default=True,
              help="Untimed calls before timing.")
@click.option("--threads", type=click.IntRange(min=1), default=None,
              help="Concurrent callers for throughput [default: the profile's threads, else 1].")
@click.option("--interpreter-threads", type=click.IntRange(min=1), default=1, show_default=True,
              help="num_threads of each TFLite interpreter.")
@click.option("--backend", type=click.Choice(("auto", *BACKENDS)),
              default="auto", show_default=True, help="TFLite interpreter backend.")
@click.option("--eval-data", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
              help="Interaction log: report HR@10, NDCG@10, MRR, coverage@10 on its test split.")
@data_format_option(default="auto")
@click.option("--min-user-interactions", type=click.IntRange(min=1), default=5, show_default=True,
              help="k-core filter for --eval-data (use the value training used).")
@click.option("--min-item-interactions", type=click.IntRange(min=1), default=5, show_default=True,
              help="k-core filter for --eval-data (use the value training used).")
@click.option("--profile", "profile_spec", type=ChoiceOrFile(BUILTIN_PROFILES, (".toml",), "device profile"),
              default=None,
              help=f"Device budgets: {' | '.join(BUILTIN_PROFILES)} | FILE.toml. A failed budget exits 1.")
@json_option("the results (instead of the table)")
@click.option("--output", "json_path", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Also write the results as JSON to FILE.")
@click.option("--markdown", "markdown_path", type=click.Path(dir_okay=False, path_type=Path),
              default=None, help="Write the results as a Markdown table to FILE.")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the synthetic inputs.")
@quiet_option()
def benchmark(targets: tuple[Path, ...], runs: int, warmup: int, threads: int | None,
              interpreter_threads: int, backend: str, eval_data: Path | None, data_format: str,
              min_user_interactions: int, min_item_interactions: int, profile_spec: str | None,
              as_json: bool, json_path: Path | None, markdown_path: Path | None, seed: int,
              quiet: bool) -> None:
    """Measure bundles and .tflite models as the device will see them, side by side.

    Each TARGET (a bundle directory or .tar.gz, or any .tflite) runs in a fresh process: cold
    start, recommend() and raw invoke latency, throughput, memory, sizes, ops, and with
    --eval-data the ranking quality through the same Recommender the device app uses.
    """
    for target in targets:
        try:
            target_kind(target)
        except ValueError as exc:
            raise click.BadParameter(str(exc), param_hint="TARGET") from exc
    profile = None
    if profile_spec is not None:
        try:
            profile = load_profile(profile_spec)
        except ProfileError as exc:
            raise click.BadParameter(str(exc), param_hint="--profile") from exc
    settings = BenchmarkSettings(
        runs=runs, warmup=warmup, threads=threads or (profile.threads if profile else 1),
        interpreter_threads=interpreter_threads, backend=backend, seed=seed,
    )
    with tempfile.TemporaryDirectory(prefix="edge-rec-eval-") as tmp:
        eval_file = None
        if eval_data is not None:
            if not quiet:
                click.echo(f"loading evaluation data {eval_data} ...", err=True)
            try:
                examples = load_eval_examples(eval_data, data_format,
                                              min_user_interactions=min_user_interactions,
                                              min_item_interactions=min_item_interactions)
            except ValueError as exc:  # DataFormatError is a ValueError naming file and line
                raise click.BadParameter(str(exc), param_hint="--eval-data") from exc
            eval_file = Path(tmp) / "eval.json"
            eval_file.write_text(json.dumps(examples.to_dict()), encoding="utf-8")
        results = []
        for number, target in enumerate(targets, start=1):
            if not quiet:
                click.echo(f"[{number}/{len(targets)}] benchmarking {target} in a fresh process",
                           err=True)
            result: dict = {"target": str(target)}
            try:
                result.update(file_sizes(target))
                result.update(run_in_fresh_process(target, settings.to_dict(), eval_file=eval_file,
                                                   progress=not quiet))
                result["target"] = str(target)
            except (ChildProcessError, ValueError, OSError) as exc:
                result["error"] = str(exc)
            if profile is not None and "error" not in result:
                result["profile"] = check_budgets(profile, result)
                skipped = [k for k, v in result["profile"]["results"].items() if v["status"] == "skipped"]
                if skipped and not quiet:
                    click.echo(f"{target}: budget(s) {', '.join(skipped)} not checked (not measured; "
                               "NDCG needs --eval-data and a recommender model)", err=True)
            results.append(result)
    if as_json:
        click.echo(json.dumps(benchmark_document(results), indent=2))
    else:
        click.echo(format_table(results), nl=False)
    if json_path is not None:
        write_json(json_path, results)
    if markdown_path is not None:
        write_markdown(markdown_path, results)
    failed = [r for r in results if r.get("error") or not (r.get("profile") or {}).get("passed", True)]
    if failed:
        names = ", ".join(r["target"] for r in failed)
        click.echo(f"FAILED: {names}", err=True)
        sys.exit(1)
