"""``eval --protocol pmg``: score generated images against user-history windows with the
personalized generation benchmark's metrics.

Inputs: a build (or its ``windows`` stage directory) and ``--generated``, a folder of images named
``<window key>.<ext>`` or of WebDataset tars whose samples are keyed by window (first image field
taken). An optional ``prompts.json`` there (``{window key: prompt}``) gives HPSv2's prompts; by
default a window's prompt is its target caption. Per window (split ``test`` by default):

    lpips_target, lpips_history   LPIPS to the target, mean LPIPS to the history images  (lower better)
    ssim_target, ssim_history     SSIM likewise                                           (higher better)
    cps            CLIP cosine of the image and the user's style text
    cpis_history   mean CLIP cosine of the image and the history images
    hpsv2          HPSv2 score of the image and its prompt
    aesthetic      LAION aesthetic predictor on the image's CLIP embedding
    verifier       FLICKR only, with ``--set verifier=MODEL``: the worker's verifier score

Results: mean and standard deviation per metric over the windows where it has a value (a window
without a style text has no CPS), the benchmark's table (Markdown), per-window rows, the windows
without a generated image and generated images matching no window. A metric whose model cannot be
loaded is reported as skipped with the command that fetches it; the others still run.
"""

from __future__ import annotations

import json
import tarfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import Field

from nearid_data.engine.catalog import Catalog
from nearid_data.engine.tario import iter_raw
from nearid_data.errors import NearidError, Rejection
from nearid_data.evaluate.images import IMAGE_SUFFIXES, image_files
from nearid_data.evaluate.metrics import cosine_matrix
from nearid_data.evaluate.pmg_metrics import lpips_distances, mean, ssim, summary
from nearid_data.evaluate.pmg_models import AestheticHead, ClipScorer, Verifier, load_lpips
from nearid_data.evaluate.protocols import locate, markdown_table
from nearid_data.imageio import decode_image, decode_png
from nearid_data.sample import slug
from nearid_data.strict import StrictModel

# (result name, the benchmark's column header), in the benchmark's column order.
COLUMNS = (
    ("lpips_target", "LPIPS↓ (Target)"),
    ("lpips_history", "LPIPS↓ (History)"),
    ("ssim_target", "SSIM↑ (Target)"),
    ("ssim_history", "SSIM↑ (History)"),
    ("cps", "CPS↑"),
    ("cpis_history", "CPIS↑ (History)"),
    ("hpsv2", "HPSv2↑"),
    ("aesthetic", "Aesthetic↑"),
    ("verifier", "Verifier↑"),
)
VERIFIED_DATASETS = ("FLICKR",)
PROMPTS_FILE = "prompts.json"
# HPSv2 is released as an open_clip checkpoint, so a plain download does not give the model.
HPSV2_HOW = (
    ". HPSv2's CLIP is made from its open_clip checkpoint: hf download "
    "laion/CLIP-ViT-H-14-laion2B-s32B-b79K --local-dir models/CLIP-ViT-H-14; hf download xswu/HPSv2 "
    "HPS_v2_compressed.pt --local-dir models; python -m nearid_data.evaluate.pmg_hpsv2 "
    "models/HPS_v2_compressed.pt --base models/CLIP-ViT-H-14 --out models/hpsv2-clip"
)


class PmgSettings(StrictModel):
    clip: str = "openai/clip-vit-large-patch14"
    """CLIP for CPS, CPIS and the aesthetic head's features (hub id or local directory)."""
    hpsv2: str = "models/hpsv2-clip"
    """A transformers CLIP directory holding the HPSv2 weights."""
    aesthetic_head: str = "models/sac+logos+ava1-l14-linearMSE.pth"
    verifier: str | None = None
    lpips_net: Literal["alex", "vgg", "squeeze"] = "vgg"
    image_size: int = Field(256, ge=16)
    """LPIPS and SSIM compare both images resized to this square size."""
    batch_size: int = Field(16, ge=1)
    split: str = "test"
    method: str | None = None
    """The method's name in the table (default: the generated folder's name)."""


@dataclass
class PmgModels:
    """The loaded metric models; a None model's metrics are skipped for the reason in ``skipped``."""

    lpips: Any = None
    clip: ClipScorer | None = None
    hpsv2: ClipScorer | None = None
    aesthetic: AestheticHead | None = None
    verifier: Verifier | None = None
    skipped: dict[str, str] = field(default_factory=dict)

    def describe(self) -> dict[str, Any]:
        described: dict[str, Any] = {}
        for name in ("clip", "hpsv2"):
            scorer = getattr(self, name)
            if scorer is not None:
                described[name] = scorer.describe()
        if self.aesthetic is not None:
            described["aesthetic_head"] = self.aesthetic.path
        if self.verifier is not None:
            described["verifier"] = self.verifier.model_id
        if self.lpips is not None:
            described["lpips"] = (
                f"lpips {getattr(self.lpips, 'pnet_type', '?')} v{self.lpips.version}"
            )
        return described


def load_models(settings: PmgSettings, dataset: str, device: str) -> PmgModels:
    models = PmgModels()

    def attempt(metrics: tuple[str, ...], load: Callable[[], Any], how: str = "") -> Any:
        try:
            return load()
        except NearidError as exc:
            for metric in metrics:
                models.skipped[metric] = f"{exc}{how}"
            return None

    models.lpips = attempt(
        ("lpips_target", "lpips_history"), lambda: load_lpips(settings.lpips_net, device)
    )
    models.clip = attempt(
        ("cps", "cpis_history", "aesthetic"),
        lambda: ClipScorer(settings.clip, device=device, batch_size=settings.batch_size),
    )
    models.hpsv2 = attempt(
        ("hpsv2",),
        lambda: ClipScorer(settings.hpsv2, device=device, batch_size=settings.batch_size),
        HPSV2_HOW,
    )
    if models.clip is not None:
        models.aesthetic = attempt(("aesthetic",), lambda: AestheticHead(settings.aesthetic_head))
    if dataset in VERIFIED_DATASETS:
        if settings.verifier is None:
            models.skipped["verifier"] = "no verifier model given (--set verifier=MODEL_DIR)"
        else:
            path = settings.verifier
            models.verifier = attempt(("verifier",), lambda: Verifier(path, device=device))
    return models


# --- inputs --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ScoredWindow:
    key: str
    record: dict[str, Any]
    target: np.ndarray
    history: list[np.ndarray]


def read_windows(directory: Path, split: str) -> tuple[str, list[ScoredWindow]]:
    """(dataset, the split's windows) of a build or its windows stage directory."""
    stage_dir = locate(directory, ["windows", "."], "_summary.json", "windows stage")
    catalog = Catalog(stage_dir)
    if catalog.summary.stage != "windows":
        raise NearidError(f"{stage_dir} is the {catalog.summary.stage!r} stage, not 'windows'")
    rows = [row for row in catalog.rows if row.split == split]
    if not rows:
        found = sorted({row.split or "" for row in catalog.rows})
        raise NearidError(
            f"{stage_dir}: no windows in split {split!r} (splits: {', '.join(found)})"
        )
    windows = []
    for row in rows:
        sample = catalog.fetch(row)
        record = sample["json"]
        history = [
            decode_png(sample[f"history_{i}.png"]) for i in range(record["num_interactions"])
        ]
        windows.append(ScoredWindow(row.key, record, decode_png(sample["target.png"]), history))
    return str(catalog.summary.models.get("dataset", rows[0].category)), windows


def generated_images(path: Path) -> dict[str, bytes]:
    """window key -> encoded image bytes, from a folder of images or WebDataset tars (or one tar)."""
    if path.is_file() and path.suffix == ".tar":
        tars = [path]
    elif path.is_dir():
        tars = sorted(path.glob("*.tar"))
    else:
        raise NearidError(f"--generated {path}: not a folder or a .tar file")
    images: dict[str, bytes] = {}
    if not tars:
        for file in image_files(path):
            if file.stem in images:
                raise NearidError(f"{path}: two generated images for window {file.stem!r}")
            images[file.stem] = file.read_bytes()
        return images
    for tar in tars:
        try:
            samples = list(iter_raw(tar))
        except (tarfile.TarError, OSError) as exc:
            raise NearidError(f"{tar}: not a readable tar ({exc})") from None
        for key, fields in samples:
            name = next(
                (f for f in sorted(fields) if Path(f"x.{f}").suffix.lower() in IMAGE_SUFFIXES), None
            )
            if name is None:
                raise NearidError(
                    f"{tar}: sample {key!r} has no image field (fields: {', '.join(fields)})"
                )
            if key in images:
                raise NearidError(f"{tar}: a second generated image for window {key!r}")
            images[key] = fields[name]
    return images


def read_prompts(path: Path) -> dict[str, str]:
    file = (path if path.is_dir() else path.parent) / PROMPTS_FILE
    if not file.is_file():
        return {}
    try:
        prompts = json.loads(file.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise NearidError(f"{file}: not valid JSON ({exc})") from None
    if not isinstance(prompts, dict) or not all(isinstance(v, str) for v in prompts.values()):
        raise NearidError(f"{file}: expected an object mapping window keys to prompt strings")
    return {str(k): v for k, v in prompts.items()}


# --- scoring -------------------------------------------------------------------------------------


def score_window(
    window: ScoredWindow, image: np.ndarray, prompt: str, models: PmgModels, settings: PmgSettings
) -> dict[str, float | None]:
    """The metrics of one generated image (None where the window or a model does not allow one)."""
    size = settings.image_size
    scores: dict[str, float | None] = {
        "ssim_target": ssim(image, window.target, size),
        "ssim_history": mean([ssim(image, h, size) for h in window.history]),
    }
    if models.lpips is not None:
        target, *history = lpips_distances(
            models.lpips, image, [window.target, *window.history], size
        )
        scores.update(lpips_target=target, lpips_history=mean(history))
    if models.clip is not None:
        vectors = models.clip.images([image, *window.history])
        scores["cpis_history"] = float(cosine_matrix(vectors[:1], vectors[1:]).mean())
        style = window.record.get("user_style", window.record.get("worker_style", ""))
        scores["cps"] = (
            float(cosine_matrix(vectors[:1], models.clip.texts([style]))[0, 0]) if style else None
        )
        if models.aesthetic is not None:
            scores["aesthetic"] = float(models.aesthetic(vectors[:1])[0])
    if models.hpsv2 is not None:
        scores["hpsv2"] = (
            float(cosine_matrix(models.hpsv2.images([image]), models.hpsv2.texts([prompt]))[0, 0])
            if prompt
            else None
        )
    if models.verifier is not None:
        scores["verifier"] = models.verifier.score(image, window.record.get("worker_id", ""))
    return scores


def evaluate_windows(
    dataset: str,
    windows: list[ScoredWindow],
    generated: dict[str, bytes],
    prompts: dict[str, str],
    models: PmgModels,
    settings: PmgSettings,
    method: str,
) -> dict[str, Any]:
    rows: list[dict[str, Any]] = []
    missing, undecodable = [], []
    for window in windows:
        data = generated.get(window.key)
        if data is None:
            missing.append(window.key)
            continue
        try:
            image = decode_image(data).rgb
        except Rejection as exc:
            undecodable.append({"window": window.key, "reason": exc.reason, "detail": exc.detail})
            continue
        prompt = prompts.get(window.key, window.record["target_item_info"]["caption"])
        scores = score_window(window, image, prompt, models, settings)
        rows.append(
            {
                "window": window.key,
                "user_id": window.record["user_id"],
                "target_item_id": window.record["target_item_id"],
                **scores,
            }
        )
    columns = [name for name, _ in _columns(dataset)]
    keys = {w.key for w in windows}
    return {
        "dataset": dataset,
        "method": method,
        "split": settings.split,
        "n_windows": len(windows),
        "n_scored": len(rows),
        "missing_generated": missing,
        "undecodable_generated": undecodable,
        "unmatched_generated": sorted(set(generated) - keys),
        "metrics": {
            name: (
                {"skipped": models.skipped[name]}
                if name in models.skipped
                else summary([row.get(name) for row in rows])
            )
            for name in columns
        },
        "models": models.describe(),
        "windows": rows,
    }


def _columns(dataset: str) -> Iterator[tuple[str, str]]:
    for name, header in COLUMNS:
        if name != "verifier" or dataset in VERIFIED_DATASETS:
            yield name, header


def table(results: dict[str, Any]) -> str:
    """The benchmark's results table for one method and dataset (mean±std, 4 decimals)."""
    columns = list(_columns(results["dataset"]))
    cells = []
    for name, _ in columns:
        figure = results["metrics"][name]
        if "skipped" in figure:
            cells.append("skipped")
        elif figure["mean"] is None:
            cells.append("-")
        else:
            cells.append(f"{figure['mean']:.4f}±{figure['std']:.4f}")
    title = f"#### {results['dataset']} Dataset ({results['n_scored']} of {results['n_windows']} {results['split']} windows scored)\n\n"
    return title + markdown_table(
        ["Method", *(h for _, h in columns)], [[results["method"], *cells]]
    )


def evaluate(
    directory: Path, generated_path: Path, settings: PmgSettings, device: str = "cpu"
) -> dict[str, Any]:
    dataset, windows = read_windows(directory, settings.split)
    generated = generated_images(generated_path)
    if not generated:
        raise NearidError(f"--generated {generated_path}: no images found")
    prompts = read_prompts(generated_path)
    models = load_models(settings, dataset, device)
    method = settings.method or generated_path.stem
    return evaluate_windows(dataset, windows, generated, prompts, models, settings, method)


def run(args: Any) -> int:
    """The ``eval --protocol pmg`` command: ``--generated``, ``--model`` (CLIP), ``--set`` for
    :class:`PmgSettings`; writes the JSON results and the Markdown table beside each other."""
    from nearid_data.config import apply_overrides
    from nearid_data.engine.atomic import write_bytes_atomic, write_json_atomic
    from nearid_data.strict import validated

    if args.generated is None:
        raise NearidError("--protocol pmg needs --generated (a folder or tar of generated images)")
    for option, given in (
        ("--embedder", args.embedder),
        ("--queries", args.queries),
        ("--masked", args.masked),
    ):
        if given:
            raise NearidError(f"{option} does not apply to --protocol pmg")
    raw = apply_overrides({}, args.settings)
    if args.model is not None:
        raw["clip"] = args.model
    if args.split is not None:
        raw["split"] = args.split
    settings = validated(PmgSettings, raw, "--set ")
    results = evaluate(args.directory, args.generated, settings, device=args.device)
    document = {
        "protocol": "pmg",
        "directory": str(args.directory),
        "generated": str(args.generated),
        "settings": settings.model_dump(mode="json"),
        "results": results,
    }
    out = args.out or args.directory / f"eval-pmg-{slug(results['method'])}.json"
    markdown = table(results)
    write_json_atomic(out, document)
    write_bytes_atomic(out.with_suffix(".md"), (markdown + "\n").encode("utf-8"))
    print(markdown)
    for metric, reason in sorted(results["metrics"].items()):
        if "skipped" in reason:
            print(f"skipped {metric}: {reason['skipped']}")
    return 0
