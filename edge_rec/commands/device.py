"""``edge-rec inspect``, ``edge-rec recommend`` and ``edge-rec serve``: the device-side commands.

They import only :mod:`device_runtime` (numpy + a TFLite interpreter), never TensorFlow, so they
run on a device with ``pip install 'edge-rec[device]'``.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import click

from device_runtime.benchmarking.device_profile import BUILTIN_PROFILES
from device_runtime.bundle import BundleError, bytes_digest, real_item_count, verify_bundle
from device_runtime.interpreter import (
    BACKENDS,
    InterpreterUnavailableError,
    ModelFormatError,
    describe_model,
)
from edge_rec.commands.options import ChoiceOrFile

log = logging.getLogger(__name__)

BACKEND_CHOICE = click.Choice(("auto", *BACKENDS))
DEVICE_ERRORS = (BundleError, ModelFormatError, InterpreterUnavailableError, OSError)


def _split_ids(text: str | None) -> list[str]:
    return [part.strip() for part in (text or "").split(",") if part.strip()]


def _inspect_report(path: Path, backend: str) -> dict[str, Any]:
    if path.is_file() and path.suffix == ".tflite":
        data = path.read_bytes()
        record = bytes_digest(data)
        return {"path": str(path), "kind": "tflite", "sha256": record.sha256,
                "size_bytes": record.size,
                "model": describe_model(data, backend=backend, source=str(path)).to_dict()}
    bundle = verify_bundle(path)
    manifest = bundle.manifest
    description = describe_model(bundle.model_bytes, backend=backend,
                                 source=f"{bundle.source}/{manifest.model.file}")
    return {
        "path": str(bundle.source),
        "kind": "bundle",
        "verified": True,
        "schema_version": manifest.schema_version,
        "created_at": manifest.created_at,
        "manifest_sha256": bundle.manifest_sha256,
        "history_length": manifest.history_length,
        "catalog_size": manifest.catalog_size,
        "items": real_item_count(manifest.catalog_size),
        "top_k": manifest.top_k,
        "signature": {"key": manifest.model.signature_key,
                      "inputs": [s.to_dict() for s in manifest.model.inputs],
                      "outputs": [s.to_dict() for s in manifest.model.outputs]},
        "quantization": dict(manifest.model.quantization),
        "metrics": dict(manifest.metrics),
        "build": dict(manifest.build),
        "files": {name: {"sha256": rec.sha256, "size": rec.size} for name, rec in manifest.files.items()},
        "popularity_head": [bundle.item_ids[i] for i in manifest.popularity[:10]],
        "model": description.to_dict(),
    }


def _print_inspect(report: dict[str, Any]) -> None:
    model = report["model"]
    click.echo(f"{report['kind']}: {report['path']}")
    if report["kind"] == "bundle":
        click.echo(f"  verified        schema {report['schema_version']}, manifest "
                   f"{report['manifest_sha256'][:12]}, created {report['created_at']}")
        click.echo(f"  catalog         {report['items']} items, history length "
                   f"{report['history_length']}, top-K {report['top_k']}")
        click.echo(f"  quantization    {json.dumps(report['quantization'])}")
        if report["metrics"]:
            click.echo(f"  metrics         {json.dumps(report['metrics'])}")
        for name, rec in sorted(report["files"].items()):
            click.echo(f"  file            {name:<14} {rec['size']:>10} bytes  {rec['sha256'][:12]}")
    else:
        click.echo(f"  size            {report['size_bytes']} bytes  {report['sha256'][:12]}")
    for key, sig in model["signatures"].items():
        ins = ", ".join(f"{n} {v['dtype']}{v['shape']}" for n, v in sig["inputs"].items())
        outs = ", ".join(f"{n} {v['dtype']}{v['shape']}" for n, v in sig["outputs"].items())
        click.echo(f"  signature       {key}: {ins} -> {outs}")
    if model["ops_available"]:
        click.echo("  ops             " + ", ".join(f"{op} x{n}" for op, n in model["ops"].items()))
        click.echo("  runs on         " + (", ".join(model["runs_on"]) or "no known interpreter"))
    else:
        click.echo(f"  ops             (the {model['backend']} backend cannot list operators)")
    click.echo("  tensor dtypes   " + ", ".join(f"{d} x{n}" for d, n in model["tensor_dtypes"].items()))
    click.echo(f"  backend         {model['backend']}")


@click.command(name="inspect")
@click.argument("bundle", type=click.Path(exists=True, path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object instead of a table.")
@click.option("--backend", type=BACKEND_CHOICE, default="auto", show_default=True,
              help="TFLite interpreter backend.")
def inspect(bundle: Path, as_json: bool, backend: str) -> None:
    """Verify a bundle (or read a plain .tflite) and show manifest, ops, dtypes and sizes."""
    try:
        report = _inspect_report(bundle, backend)
    except DEVICE_ERRORS as exc:
        raise click.ClickException(str(exc)) from exc
    if as_json:
        click.echo(json.dumps(report, indent=2))
    else:
        _print_inspect(report)


@click.command(name="recommend")
@click.argument("bundle", type=click.Path(exists=True, path_type=Path))
@click.option("--history", default="", show_default=False,
              help="Comma-separated item ids, oldest first (empty: cold start).")
@click.option("-k", "k", type=int, default=10, show_default=True, help="How many items.")
@click.option("--exclude", default="", help="Comma-separated item ids never to recommend.")
@click.option("--keep-seen", is_flag=True, help="Allow items of the history to be recommended.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object instead of a table.")
@click.option("--backend", type=BACKEND_CHOICE, default="auto", show_default=True,
              help="TFLite interpreter backend.")
def recommend(bundle: Path, history: str, k: int, exclude: str, keep_seen: bool, as_json: bool,
              backend: str) -> None:
    """Recommend the next items for a history of external item ids."""
    from device_runtime.recommender import Recommender

    try:
        recommender = Recommender.load(bundle, backend=backend)
        result = recommender.recommend(_split_ids(history), k, exclude=_split_ids(exclude),
                                       exclude_seen=not keep_seen)
    except (*DEVICE_ERRORS, ValueError, TypeError) as exc:
        raise click.ClickException(str(exc)) from exc
    if as_json:
        click.echo(json.dumps(result.to_dict(), indent=2))
        return
    note = {"model": "", "popularity": "  (cold start: popularity order)",
            "model+popularity": "  (filled from popularity)"}[result.source]
    click.echo(f"top {len(result)} for a history of {len(_split_ids(history))} ids"
               f" ({result.unknown_ids} unknown){note}")
    for item in result:
        score = f"{item.score:9.4f}" if item.source == "model" else "  popular"
        click.echo(f"{item.rank:>4}  {item.item_id:<20} {score}  {item.title}")


@click.command(name="serve")
@click.argument("bundle", type=click.Path(exists=True, path_type=Path))
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to bind; anything but loopback is reachable from the network.")
@click.option("--port", type=click.IntRange(0, 65535), default=8765, show_default=True,
              help="TCP port (0 picks a free one).")
@click.option("--token", envvar="EDGE_REC_SERVE_TOKEN", default=None,
              help="Bearer token that enables POST /reload (or env EDGE_REC_SERVE_TOKEN); "
                   "without one, /reload is refused.")
@click.option("--max-body-bytes", type=click.IntRange(min=256), default=64 * 1024, show_default=True,
              help="Largest accepted request body.")
@click.option("--threads", "num_threads", type=click.IntRange(min=1), default=1, show_default=True,
              help="Interpreter threads per request.")
@click.option("--backend", type=BACKEND_CHOICE, default="auto", show_default=True,
              help="TFLite interpreter backend.")
@click.option("--profile", "profile_spec", default=None,
              type=ChoiceOrFile(BUILTIN_PROFILES, (".toml",), "device profile"),
              help=f"Device profile ({' | '.join(BUILTIN_PROFILES)} | FILE.toml) whose budgets bound the "
                   "interpreters: one per thread it grants, its RAM budget for their tensors.")
@click.option("--trust-root", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
              help="With --update-dir: serve and reload only bundles a signed release lists "
                   "(the update repository's root.json of version 1).")
@click.option("--update-dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="The device's update folder (`edge-rec update --dest`) holding the trusted metadata.")
@click.option("--state-dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Turn on personalization: users' heads live in this folder (POST /feedback, "
                   "/forget, and 'user' in /recommend).")
def serve(bundle: Path, host: str, port: int, token: str | None, max_body_bytes: int,
          num_threads: int, backend: str, profile_spec: str | None, trust_root: Path | None,
          update_dir: Path | None, state_dir: Path | None) -> None:
    """Serve a bundle over a JSON HTTP API until SIGTERM / Ctrl-C (POST /recommend, GET /health,
    POST /reload; POST /feedback and /forget with --state-dir)."""
    from device_runtime.benchmarking.device_profile import ProfileError, load_profile
    from device_runtime.recommender import Recommender
    from device_runtime.runtime_limits import DEFAULT_LIMITS, RuntimeLimits
    from device_runtime.server import serve as run_server

    try:
        limits = RuntimeLimits.for_profile(load_profile(profile_spec)) if profile_spec else DEFAULT_LIMITS
    except ProfileError as exc:
        raise click.BadParameter(str(exc), param_hint="--profile") from None
    if (trust_root is None) != (update_dir is None):
        raise click.UsageError("--trust-root and --update-dir go together (signed bundles only)")
    from device_runtime.updates.errors import UpdateError  # no python-tuf needed for the class

    try:
        trust = None
        if trust_root is not None:
            from device_runtime.updates import DeviceTrust

            trust = DeviceTrust(update_dir, trust_root)
        recommender = Recommender.load(bundle, num_threads=num_threads, backend=backend, limits=limits,
                                       trust=trust, state_dir=state_dir)
        run_server(recommender, host, port, token=token, max_body_bytes=max_body_bytes)
    except (*DEVICE_ERRORS, ValueError, UpdateError) as exc:
        raise click.ClickException(str(exc)) from exc
