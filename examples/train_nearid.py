"""Train a tiny identity embedding on NearID tuples, on CPU, in a few seconds.

    python -m nearid_data build --pipeline pipelines/demo.yaml
    python examples/train_nearid.py --export build/demo/export --steps 20

A small CNN embeds 32x32 images; the loss is NearID's two-tier objective, which orders
similarities as same identity > near-identity distractor > random negative:

- discrimination: the anchor must pick its positive out of its own distractor and every other
  image of the batch (softmax cross-entropy over cosine similarities / temperature);
- ranking: the distractor, which shares the anchor's background, must still score above a random
  negative by a margin, so the embedding keeps "similar subject" above "unrelated".

Images of the anchor's identity elsewhere in the batch (other anchors' positives, or distractors
painted with the anchor's identity as donor) are not counted as wrong answers.
"""

from __future__ import annotations

import argparse
import itertools
import math
import sys

import torch
from torch import nn
from torch.nn import functional as F
from torch.utils.data import DataLoader

from nearid_data.loaders.streaming import NearIDStream, export_shards
from nearid_data.loaders.tuples import NearIDTuple, collate


class TinyEncoder(nn.Module):
    def __init__(self, dim: int = 32) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(3, 16, 3, stride=2, padding=1),
            nn.ReLU(),
            nn.Conv2d(16, 32, 3, stride=2, padding=1),
            nn.ReLU(),
            nn.AdaptiveAvgPool2d(1),
            nn.Flatten(),
            nn.Linear(32, dim),
        )

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.net(images.float() / 255.0), dim=-1)


def two_tier_loss(
    batch: dict, model: nn.Module, *, temperature: float = 0.1, margin: float = 0.2
) -> torch.Tensor:
    anchor, positive, distractor, negative = (
        model(batch[name]) for name in ("anchor", "positive", "distractor", "negative")
    )
    candidates = torch.cat([positive, distractor, negative])  # (3B, D)
    logits = anchor @ candidates.T / temperature  # (B, 3B)
    who = batch["identity"] + batch["distractor_identity"] + batch["negative_identity"]
    own = torch.arange(len(anchor))
    same = torch.tensor([[c == a for c in who] for a in batch["identity"]])
    same[own, own] = False  # the anchor's own positive is the right answer, not a false negative
    discrimination = F.cross_entropy(logits.masked_fill(same, float("-inf")), own)
    above_negative = (anchor * distractor).sum(-1) - (anchor * negative).sum(-1)
    ranking = F.relu(margin - above_negative).mean()
    return discrimination + ranking


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--export", default="build/demo/export", help="an export directory")
    parser.add_argument("--split", default="train")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--image-size", type=int, default=32)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    torch.manual_seed(args.seed)
    stream = NearIDStream(
        export_shards(args.export, args.split),
        seed=args.seed,
        shuffle_buffer=4 * args.batch_size,  # mix identities within a batch
        image_size=args.image_size,
    )
    loader: DataLoader[NearIDTuple] = DataLoader(
        stream, batch_size=args.batch_size, collate_fn=collate
    )
    model = TinyEncoder()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    step, loss = 0, torch.tensor(math.nan)
    for epoch in itertools.count():
        stream.set_epoch(epoch)
        for batch in loader:
            loss = two_tier_loss(batch, model)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            step += 1
            print(f"epoch {epoch} step {step} loss {loss.item():.4f}")
            if step >= args.steps:
                print(f"final loss {loss.item():.4f}")
                return 0 if math.isfinite(loss.item()) else 1
        if step == 0:
            print(f"no tuples in {args.export} ({args.split})", file=sys.stderr)
            return 1
    return 1  # itertools.count() never ends: the loop returns


if __name__ == "__main__":
    sys.exit(main())
