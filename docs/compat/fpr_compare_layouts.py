"""Compare a loader's output (their CSVs, paths under their out_path) with our export-fpr:
the same (name, species, relative path) rows and the same pixels at each path. Run it from the
folder the loader ran in: their file_path is relative to it."""
import os, sys
import numpy as np, pandas as pd
from PIL import Image

theirs, ours = sys.argv[1], sys.argv[2]
total = {}
for csv_name in ("train_data.csv", "gallery_data.csv", "extra_data.csv"):
    if not os.path.exists(os.path.join(theirs, csv_name)):
        continue
    a, b = pd.read_csv(os.path.join(theirs, csv_name)), pd.read_csv(os.path.join(ours, csv_name))
    a["rel"] = [os.path.relpath(p, theirs) for p in a["file_path"]]
    b["rel"] = b["file_path"]
    ka = {(str(r["name"]), r["species"], r["rel"]) for _, r in a.iterrows()}
    kb = {(str(r["name"]), r["species"], r["rel"]) for _, r in b.iterrows()}
    pixels_equal = sum(
        np.array_equal(np.asarray(Image.open(os.path.join(theirs, rel)).convert("RGB")),
                       np.asarray(Image.open(os.path.join(ours, rel)).convert("RGB")))
        for _, _, rel in ka & kb)
    cols = (list(a.columns[:-1]), list(b.columns[:-1]))
    print(f"{csv_name}: theirs {len(ka)} rows, ours {len(kb)}, same (name, species, path) {len(ka & kb)}, "
          f"same pixels {pixels_equal}; columns equal: {cols[0] == cols[1]} {cols if cols[0] != cols[1] else ''}; "
          f"row order equal: {list(a['rel']) == list(b['rel'])}")
