"""Fine-tune a vision backbone with LoRA on synthetic triplets: PODS's personalized representation.

    python -m nearid_data build --pipeline pipelines/pods-synthetic.yaml --device cuda
    python examples/train_contrastive_lora.py --export build/pods-synthetic/export-synthetic \
        --backbone models/dinov2-base --steps 500 --out lora-dinov2

Triplets come from ``nearid_data.loaders.triplets``: a real reference view (anchor), one of the
identity's synthetic or cut-and-paste positives, and one of its category negatives. The loss is
InfoNCE over the batch: each anchor must pick its own positive out of every positive and negative
in the batch; other identities' positives are negatives too, while positives of the anchor's own
identity elsewhere in the batch are not counted as wrong answers. The backbone (any transformers
ViT-style model whose attention has query and value projections, e.g. DINOv2) is frozen; LoRA
adapters on those projections are trained and saved with ``save_pretrained``.
"""

from __future__ import annotations

import argparse
import itertools
import math
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch
from peft import LoraConfig, get_peft_model
from torch.nn import functional as F
from transformers import AutoModel

from nearid_data.loaders.triplets import Triplet, TripletStream

MEAN = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
STD = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)


def to_tensor(images: list[np.ndarray], size: int) -> torch.Tensor:
    batch = torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2).float() / 255.0
    batch = F.interpolate(batch, size=(size, size), mode="bilinear", antialias=True)
    return (batch - MEAN) / STD


def projections(model: torch.nn.Module) -> list[str]:
    """The attention's query and value projections: ``query``/``value`` in transformers 4,
    ``q_proj``/``v_proj`` in 5."""
    names = {name.rsplit(".", 1)[-1] for name, _ in model.named_modules()}
    for pair in (["query", "value"], ["q_proj", "v_proj"]):
        if set(pair) <= names:
            return pair
    raise SystemExit("the backbone has no query/value (or q_proj/v_proj) attention projections")


def embed(model: torch.nn.Module, pixels: torch.Tensor) -> torch.Tensor:
    return F.normalize(model(pixel_values=pixels).last_hidden_state[:, 0], dim=-1)


def info_nce(
    batch: list[Triplet], model: torch.nn.Module, size: int, temperature: float
) -> torch.Tensor:
    anchor = embed(model, to_tensor([t.anchor for t in batch], size))
    candidates = embed(
        model, to_tensor([t.positive for t in batch] + [t.negative for t in batch], size)
    )
    logits = anchor @ candidates.T / temperature  # (B, 2B): positives, then negatives
    identities = [t.identity for t in batch]
    same = torch.tensor([[a == b for b in identities] for a in identities])
    own = torch.eye(len(batch), dtype=torch.bool)
    ignore = torch.cat([same & ~own, torch.zeros_like(same)], dim=1)  # own identity, not own pick
    logits = logits.masked_fill(ignore, float("-inf"))
    return F.cross_entropy(logits, torch.arange(len(batch)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--export", type=Path, required=True, help="the export-synthetic directory")
    parser.add_argument(
        "--backbone", required=True, help="hub id or directory of a ViT/DINOv2 model"
    )
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--image-size", type=int, default=224)
    parser.add_argument("--rank", type=int, default=16)
    parser.add_argument("--lr", type=float, default=1e-4)
    parser.add_argument("--temperature", type=float, default=0.07)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=None, help="where to save the LoRA adapter")
    args = parser.parse_args()

    torch.manual_seed(args.seed)
    backbone = AutoModel.from_pretrained(args.backbone)
    lora = LoraConfig(r=args.rank, lora_alpha=args.rank, target_modules=projections(backbone))
    model = get_peft_model(backbone, lora)
    model.train()
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=args.lr)

    shards = sorted((args.export / "data" / "train").glob("*.tar"))
    stream = TripletStream(shards, seed=args.seed)

    first = list(stream)
    if not first:
        raise SystemExit(
            f"no triplets in {args.export}: no identity has anchors, positives and negatives"
        )

    def epochs() -> Iterator[Triplet]:
        yield from first
        for epoch in itertools.count(1):
            stream.set_epoch(epoch)
            yield from stream

    triplets = epochs()
    loss = torch.tensor(math.nan)
    for step in range(args.steps):
        batch = list(itertools.islice(triplets, args.batch_size))
        loss = info_nce(batch, model, args.image_size, args.temperature)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        print(f"step {step} loss {loss.item():.4f}")
    if stream.skipped:
        print(f"identities without anchors, positives or negatives: {len(stream.skipped)}")
    if args.out is not None:
        model.save_pretrained(args.out)
    print(f"final loss {loss.item():.4f}")


if __name__ == "__main__":
    main()
