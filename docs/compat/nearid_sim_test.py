"""NearID's released evaluation code (evaluation/sim_test.py: load_dataset_auto,
fast_combine_aligned, SynCDSimilarityDataset, compute_similarities_with_dataloader_batched,
_load_indices_json; evaluation/metrics.py: add_disc_sim_vs_crossii_bidir_with_overall,
summarize_margin_family as gen_tables.py calls them) run unchanged on our export-nearid output.
Only the embedding model is replaced: the calculator embeds with one of our embedders (the same
vectors our eval gets), normalised as SigLIP2SimilarityCalculator does (+1e-6). wandb and
json_repair, imported by sim_test.py but unused on this path, are stubbed (not installed here).
Then our eval (paper and release conventions) runs on the same folder; prints both and the max
abs differences.

usage: run_reference.py ARROW_ROOT SET EMBEDDER [MODEL]"""
import os

REFS = os.environ.get("REFS", "/tmp/refs")  # the fetched reference repositories
import json, sys, types
from pathlib import Path
import numpy as np, pandas as pd, torch
from transformers import AutoModel, AutoProcessor  # noqa: F401  (before the stubs: accelerate probes wandb)

sys.modules["wandb"] = types.ModuleType("wandb")
sys.modules["json_repair"] = types.ModuleType("json_repair")
sys.path.insert(0, REFS + "/Gorluxor+NearID")
from evaluation import sim_test as st
from evaluation import metrics as mt
from nearid_data.backend import build_backend
from nearid_data.evaluate.cache import EmbeddingCache
from nearid_data.vision.embedders import EMBEDDERS
from nearid_data.evaluate.protocols import Context, Options, run_protocol

root, set_name, embedder_name = sys.argv[1], sys.argv[2], sys.argv[3]
spec = {"name": embedder_name, **({"model": sys.argv[4]} if len(sys.argv) > 4 else {})}
EMB = build_backend(EMBEDDERS, spec, where="embedder")

class Processor:  # PIL images -> their pixels, unchanged, for the calculator below
    def __call__(self, images, return_tensors="pt"):
        return types.SimpleNamespace(pixel_values=torch.from_numpy(np.stack([np.asarray(i) for i in images])))

class Calculator:
    device, dtype, processor = "cpu", torch.float64, Processor()
    def encode_pixel_values(self, pv):
        e = torch.from_numpy(np.asarray(EMB.embed([x.numpy().astype(np.uint8) for x in pv]), np.float64))
        return e / (e.norm(p=2, dim=-1, keepdim=True) + 1e-6)

PREFIX = "disc_m_sim_vs_crossii_bidir"
report, diffs = {}, []
for masks in (False, True):
    hf_ds = st.fast_combine_aligned(st.load_dataset_auto(f"{root}/NearID"),
                                    st.load_dataset_auto(f"{root}/NearID-{set_name}"))["train"]
    for split in (None, "test"):
        dataset = st.SynCDSimilarityDataset(hf_dataset=hf_ds, processor=Calculator.processor, mode="fullneg",
                                            use_masks=masks, mask_keep="foreground", mask_fill="black")
        if split:
            dataset = torch.utils.data.Subset(dataset, st._load_indices_json(f"{root}/splits/{split}.json"))
        rows = st.compute_similarities_with_dataloader_batched(dataset, Calculator(), batch_size=8, num_workers=0)
        df = mt.add_disc_sim_vs_crossii_bidir_with_overall(pd.DataFrame(rows), prefix=PREFIX)
        df["method"], df["type"] = embedder_name, "fg" if masks else "full"
        s = mt.summarize_margin_family(df, prefix=PREFIX, by=["method", "type"]).iloc[0]
        theirs = {k: float(s[k]) for k in ("SSRm", "PA", "SSR", "PA_trials", "SSRm_n")}
        ours = {}
        for convention in ("paper", "release"):
            context = Context(EmbeddingCache(EMB, None), masked=masks, convention=convention)
            doc, _ = run_protocol("nearid", Path(root), context, Options(split=split))
            r = doc["results"]["generators"][set_name]
            ours[convention] = {"SSR": 100 * r["ssr"], "PA": 100 * r["pa"], "trials": r["n_margins"], "samples": r["n_samples"]}
        rel = ours["release"]
        d = max(abs(rel["SSR"] - theirs["SSRm"]), abs(rel["PA"] - theirs["PA"]))
        diffs.append(d)
        report[f"{'masked' if masks else 'image'}/{split or 'all'}"] = {
            "theirs": theirs, "ours": ours, "max_abs_diff_release_pct": d,
            "trials_equal": rel["trials"] == theirs["PA_trials"] and rel["samples"] == theirs["SSRm_n"]}
print(json.dumps(report, indent=1))
print("max abs difference (percentage points), --convention release vs their SSRm/PA:", max(diffs))
