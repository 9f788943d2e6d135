"""Command line: ``python -m nearid_data {build,pipelines,verify,inspect,eval,report,publish,init,schemas}``.

Exit codes: 0 success; 1 a build or verification failed; 2 a usage or configuration error;
3 ``--strict`` and some input was rejected or a stage warned (nothing kept, an empty split).
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from nearid_data import __version__
from nearid_data.engine.storage import Location, location
from nearid_data.errors import NearidError
from nearid_data.stages import STAGES

log = logging.getLogger("nearid_data")

EXAMPLES = """examples:
  python -m nearid_data build --stage distractors       # ./nearid.yaml, else the demo
  python -m nearid_data build --pipeline demo --stage segment --set segment.dilate_px=9
  python -m nearid_data build --pipeline my.yaml --only export
  python -m nearid_data pipelines
  python -m nearid_data verify build/demo
  python -m nearid_data inspect build/demo
  python -m nearid_data publish build/demo/export --repo-id OWNER/NAME --dry-run
"""


def parser() -> argparse.ArgumentParser:
    main = argparse.ArgumentParser(
        prog="python -m nearid_data",
        description="Build identity-focused image datasets: segment subjects, paint near-identity "
        "distractors on the same background, split, export WebDataset shards with manifests.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    main.add_argument("-v", "--verbose", action="store_true", help="debug logging and tracebacks")
    main.add_argument("--version", action="version", version=f"nearid-data {__version__}")
    commands = main.add_subparsers(dest="command", required=True, metavar="COMMAND")

    build = commands.add_parser(
        "build",
        help="run a pipeline's stages",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    build.add_argument(
        "--pipeline",
        help="a pipeline YAML file or the name of a shipped one (see the 'pipelines' command; "
        "default: ./nearid.yaml if present, else the demo)",
    )
    stage_names = ", ".join(STAGES.names())
    target = build.add_mutually_exclusive_group()
    target.add_argument(
        "--stage",
        default="all",
        help="build up to this stage: the upstream stages it needs first (what is missing or "
        "stale), then it; 'all' (default: every stage, then verify) or 'verify'. "
        f"Stages: {stage_names}",
    )
    target.add_argument(
        "--only", metavar="STAGE", help="run this one stage on its upstream as it is"
    )
    build.add_argument(
        "--out",
        type=location,
        help="build directory, a path or an fsspec URL such as s3://bucket/prefix "
        "(default: the pipeline's 'out', else build/<name>)",
    )
    build.add_argument(
        "--workers", type=int, default=1, help="worker processes, or Ray actors (default 1)"
    )
    build.add_argument(
        "--executor",
        choices=["local", "ray"],
        help="where units run: local processes or Ray actors (default: the pipeline's "
        "'executor', else local)",
    )
    build.add_argument(
        "--ray-address",
        metavar="ADDRESS",
        help="with --executor ray: the cluster to join ('auto', or ray://host:port); default: "
        "start Ray on this machine",
    )
    build.add_argument(
        "--device", default="cpu", help="cpu, cuda or cuda:N for model stages (default cpu)"
    )
    build.add_argument("--force", action="store_true", help="rebuild the stage(s) from scratch")
    build.add_argument(
        "--strict",
        action="store_true",
        help="exit with code 3 if any input was rejected or a stage warned (e.g. an empty split)",
    )
    build.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a pipeline value, e.g. --set source.n_identities=100 (repeatable)",
    )

    commands.add_parser("pipelines", help="list the shipped pipelines (names for --pipeline)")

    verify = commands.add_parser("verify", help="re-read and re-hash every shard of a build")
    verify.add_argument(
        "directory", type=location, help="a build directory or one stage's directory"
    )

    inspect = commands.add_parser("inspect", help="counts, rejections and sizes of a build")
    inspect.add_argument(
        "directory", type=location, help="a build directory or one stage's directory"
    )

    from nearid_data.evaluate import command as eval_command

    evaluate = commands.add_parser(
        "eval",
        help="score an image embedder on a build: NearID SSR/PA, FPR mAP, PODS",
        epilog=eval_command.EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    eval_command.add_arguments(evaluate)

    from nearid_data.publish.command import add_arguments as add_publish_arguments

    add_publish_arguments(
        commands.add_parser("publish", help="upload an export to the Hugging Face Hub")
    )

    from nearid_data.report.command import add_arguments as add_report_arguments

    add_report_arguments(
        commands.add_parser("report", help="a self-contained HTML report of a build")
    )

    from nearid_data.init_project import add_arguments as add_init_arguments

    add_init_arguments(
        commands.add_parser("init", help="write a commented nearid.yaml for a folder of images")
    )

    schemas = commands.add_parser("schemas", help="write the manifests' JSON Schemas")
    schemas.add_argument("--out", type=Path, default=Path("manifests"))
    return main


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO, format="%(message)s")
    try:
        return _dispatch(args)
    except NearidError as exc:
        log.error("error: %s", exc)
        return 2
    except Exception as exc:  # a failed unit or a bug: say which, traceback only when asked
        if args.verbose:
            raise
        log.error("failed: %s (rerun with -v for the traceback)", exc)
        return 1


def _dispatch(args: argparse.Namespace) -> int:
    if args.command == "build":
        return _build(args)
    if args.command == "pipelines":
        return _pipelines()
    if args.command == "verify":
        return _verify(args.directory)
    if args.command == "inspect":
        from nearid_data.inspect_build import inspect_text

        print(inspect_text(args.directory))
        return 0
    if args.command == "publish":
        from nearid_data.publish.command import run as run_publish

        return run_publish(args)
    if args.command == "eval":
        from nearid_data.evaluate.command import run as run_eval

        return run_eval(args)
    if args.command == "init":
        from nearid_data.init_project import run as run_init

        return run_init(args)
    if args.command == "report":
        from nearid_data.report.command import run as run_report

        return run_report(args)
    from nearid_data.schemas import write_schemas

    for path in write_schemas(args.out):
        log.info("wrote %s", path)
    return 0


def _pipelines() -> int:
    from nearid_data.pipeline_files import describe, shipped_pipelines

    shipped = shipped_pipelines()
    width = max(map(len, shipped))
    for name, path in shipped.items():
        print(f"{name:<{width}}  {describe(path)}")
    return 0


def _verify(directory: Location) -> int:
    from nearid_data.verify import verify

    report = verify(directory)
    for problem in report.problems:
        log.error("FAIL %s", problem)
    status = "FAILED" if report.problems else "ok"
    log.info(
        "verify %s: %d stages, %d shards, %d samples, %d problems",
        status,
        len(report.stages),
        report.shards,
        report.samples,
        len(report.problems),
    )
    return 1 if report.problems else 0


def _build(args: argparse.Namespace) -> int:
    from nearid_data.build import build
    from nearid_data.config import PipelineConfig
    from nearid_data.pipeline_files import resolve_pipeline

    if args.workers < 1:
        raise NearidError("--workers must be at least 1")
    path = resolve_pipeline(args.pipeline)
    if args.pipeline is None:
        log.info("pipeline: %s (no --pipeline given)", path.name if path.is_absolute() else path)
    executor = [f"executor.name={args.executor}"] if args.executor else []
    pipeline = PipelineConfig.load(path, [*args.overrides, *executor])
    if args.ray_address is not None:
        if pipeline.executor.get("name") != "ray":
            raise NearidError("--ray-address applies to the Ray executor: add --executor ray")
        raw = pipeline.model_dump(mode="json")
        raw["executor"]["address"] = args.ray_address
        pipeline = PipelineConfig.from_dict(raw)
    out = args.out or location(pipeline.out or f"build/{pipeline.name}")
    stage = args.only or args.stage
    summaries = build(
        pipeline,
        out=out,
        stage=stage,
        only=args.only is not None,
        workers=args.workers,
        device=args.device,
        force=args.force,
    )
    rejected = sum(s.n_rejected for s in summaries)
    if summaries:
        log.info("built %s in %s", pipeline.name, out)
    if stage in ("all", "verify") and _verify(out):
        return 1
    warnings = [w for s in summaries for w in s.warnings]
    if args.strict and (rejected or warnings):
        log.error(
            "--strict: %d inputs were rejected, %d warnings (see the manifests and summaries)",
            rejected,
            len(warnings),
        )
        return 3
    return 0


if __name__ == "__main__":
    sys.exit(main())
