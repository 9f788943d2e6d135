"""PODS's global tasks (personalized-rep: dataset/image_dataset.py EvalDataset and util/data_util.py
get_paths to find the images; downstream/classification.py classification and
downstream/retrieval.py retrieval for the metrics), unchanged, on a PODS folder layout, one
positive class at a time as downstream/global_tasks.py run_global_tasks does. Replaced: the model
(one of our embedders) and util.misc.load_features' loop (embed, then L2-normalise in float32 as
it does), because util.misc imports torchmetrics/pytorch_lightning, not installed here;
torchvision (imported by image_dataset.py, unused there) is stubbed. sklearn comes from a local
--target install. Then our eval on the same folder; prints the max abs differences.

usage: run_global_tasks.py PODS_ROOT EMBEDDER [MODEL]"""
import os

REFS = os.environ.get("REFS", "/tmp/refs")  # the fetched reference repositories
import json, sys, types
from pathlib import Path
import numpy as np, torch
sys.path.insert(0, os.environ.get("SKLEARN_DIR", "sk"))
from nearid_data.backend import build_backend
from nearid_data.vision.embedders import EMBEDDERS
EMB = build_backend(EMBEDDERS, {"name": sys.argv[2], **({"model": sys.argv[3]} if len(sys.argv) > 3 else {})}, where="embedder")
EMB.embed([np.zeros((32, 32, 3), np.uint8)])  # load the model before the torchvision stub
tv = types.ModuleType("torchvision"); tv.transforms = types.ModuleType("torchvision.transforms")
sys.modules["torchvision"] = tv; sys.modules["torchvision.transforms"] = tv.transforms
sys.path.insert(0, REFS + "/ssundaram21+personalized-rep")
from dataset.image_dataset import EvalDataset
from downstream.classification import classification
from downstream.retrieval import retrieval
from nearid_data.evaluate.cache import EmbeddingCache
from nearid_data.evaluate.protocols import Context, Options, run_protocol

root = sys.argv[1]
info = json.loads(Path(root, "pods_info.json").read_text())
class_to_idx = {k: int(v) for k, v in info["class_to_idx"].items()}

def features(split):
    data = EvalDataset(root=f"{root}/{split}", class_to_idx=class_to_idx, transform=lambda im: np.asarray(im))
    items = [data[i] for i in range(len(data))]
    embeds = torch.nn.functional.normalize(torch.Tensor(EMB.embed([im for im, _, _ in items])), dim=1, p=2).numpy()
    return embeds.astype(np.float32), np.array([l for _, l, _ in items]), np.array([p for _, _, p in items])

train, test = features("train"), features("test")
theirs = {}
for name, index in class_to_idx.items():
    c = classification(*train[:2], *test, index, save_extra=False)
    r = retrieval(*train[:2], *test, index)["avg_retrieval"]
    theirs[name] = {"pr_auc": c["avg"], "ndcg": r["NDCG"], "mrr": r["MRR"], "top_10": r["top-10 acc"]}
doc, _ = run_protocol("pods", Path(root), Context(EmbeddingCache(EMB, None), masked=False), Options())
ours = {name: doc["results"]["per_class"][name]["all"] for name in theirs}
diffs = {m: max(abs(theirs[n][m] - ours[n][m]) for n in theirs) for m in ("pr_auc", "ndcg", "mrr", "top_10")}
print(json.dumps({"classes": len(theirs), "max_abs_diff": diffs}, indent=1))
