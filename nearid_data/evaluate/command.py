"""``python -m nearid_data eval``: score an embedder on a build with one protocol.

Prints the results as a Markdown table and writes them, with the embedder's settings and
fingerprint, to a JSON file. Embeddings are cached (see ``cache.py``), so a rerun, or another
protocol over the same images, embeds nothing twice.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from nearid_data.backend import build_backend
from nearid_data.config import apply_overrides
from nearid_data.engine.atomic import write_json_atomic
from nearid_data.errors import NearidError
from nearid_data.evaluate.cache import EmbeddingCache
from nearid_data.evaluate.metrics import CONVENTIONS
from nearid_data.evaluate.protocols import PROTOCOLS, Context, Options, run_protocol
from nearid_data.vision.embedders import EMBEDDERS

log = logging.getLogger("nearid_data")

EXAMPLES = """examples:
  python -m nearid_data eval build/demo --protocol nearid --embedder colorhist
  python -m nearid_data eval build/demo --protocol nearid --embedder siglip --device cuda --masked
  python -m nearid_data eval data/nearid-release --protocol nearid --embedder siglip --split test \
      --convention release
  python -m nearid_data eval build/fpr-cub --protocol fpr --embedder dinov2 --queries generated/
  python -m nearid_data eval build/pods --protocol pods --embedder clip --model models/clip-vit-b32
  python -m nearid_data eval build/pmg-flickr --protocol pmg --generated out/pmg --set verifier=models/v
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "directory", type=Path, help="a build directory, or its export (export, export-fpr, pods)"
    )
    parser.add_argument("--protocol", required=True, choices=sorted([*PROTOCOLS, "pmg"]))
    parser.add_argument(
        "--embedder", choices=EMBEDDERS.names(), help="required except for --protocol pmg"
    )
    parser.add_argument(
        "--generated", type=Path, help="pmg: generated images (folder or tars) keyed by window"
    )
    parser.add_argument("--model", help="hub id or local directory (clip, siglip, dinov2)")
    parser.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N (default cpu)")
    parser.add_argument(
        "--set",
        dest="settings",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="an embedder setting, e.g. --set batch_size=64 --set pooling=mean (repeatable)",
    )
    parser.add_argument(
        "--masked",
        action="store_true",
        help="foreground only: black out the background with the subject mask (nearid, pods)",
    )
    parser.add_argument("--split", help="nearid: evaluate this split only (default: all)")
    parser.add_argument(
        "--convention",
        choices=CONVENTIONS,
        default="paper",
        help="nearid: SSR/PA as the paper defines them (default), or as NearID's released code "
        "computes them (its mean margin one more PA trial per sample, masks cleaned)",
    )
    parser.add_argument(
        "--queries",
        type=Path,
        help="fpr: a folder of query images, one sub-folder per subject (default: the references)",
    )
    parser.add_argument(
        "--out",
        type=Path,
        help="result JSON (default: DIR/eval-PROTOCOL-EMBEDDER[-masked][-release].json)",
    )
    parser.add_argument(
        "--cache-dir", type=Path, help="embedding cache directory (default: DIR/.embeddings)"
    )
    parser.add_argument("--no-cache", action="store_true", help="neither read nor write the cache")


def run(args: argparse.Namespace) -> int:
    if args.protocol == "pmg":  # its own metric models, no embedder (see pmg_protocol.py)
        from nearid_data.evaluate.pmg_protocol import run as run_pmg

        return run_pmg(args)
    if args.embedder is None:
        raise NearidError(f"--protocol {args.protocol} needs --embedder")
    if args.split is not None and args.protocol != "nearid":
        raise NearidError("--split applies to --protocol nearid and pmg only")
    if args.convention != "paper" and args.protocol != "nearid":
        raise NearidError("--convention applies to --protocol nearid only")
    if args.queries is not None and args.protocol != "fpr":
        raise NearidError("--queries applies to --protocol fpr only")
    if not args.directory.is_dir():  # before any model loads
        raise NearidError(
            f"{args.directory} is not a directory; build one first, e.g. "
            "python -m nearid_data build (then eval build/demo/export)"
        )
    spec = apply_overrides({"name": args.embedder}, args.settings)
    if args.model is not None:
        if "model" not in EMBEDDERS.load(args.embedder).Config.model_fields:
            raise NearidError(f"--model: the {args.embedder} embedder takes no model")
        spec["model"] = args.model
    embedder = build_backend(EMBEDDERS, spec, where="embedder", device=args.device)
    cache_dir = None if args.no_cache else (args.cache_dir or args.directory / ".embeddings")
    cache = EmbeddingCache(embedder, cache_dir)
    context = Context(cache, masked=args.masked, convention=args.convention)
    options = Options(split=args.split, queries=args.queries)
    document, table = run_protocol(args.protocol, args.directory, context, options)
    mode = ("-masked" if args.masked else "") + ("-release" if args.convention == "release" else "")
    out = args.out or args.directory / f"eval-{args.protocol}-{args.embedder}{mode}.json"
    write_json_atomic(out, document)
    print(table)
    log.info("wrote %s", out)
    return 0
