"""Small CUB, Stanford Cars (HF parquet) and WildlifeReID copies, written by the test fixtures."""
import csv, sys
from pathlib import Path
from nearid_data.sources.cub import FPR_GROUPS
from tests.source_fixtures import jpeg, write_cars_hf, write_cub

out = Path(sys.argv[1])
write_cub(out / "cub", class_ids=[c for ids in FPR_GROUPS.values() for c in ids], per_class=30, size=(48, 64))
write_cars_hf(out / "cars", n_classes=36, per_split=22, size=(48, 64))
root = out / "reid"
rows, counts = [], [14, 11, 9, 8, 20, 25, 6, 13, 12, 16, 10, 30]
for k in range(max(counts)):
    for identity, n in enumerate(counts):
        if k < n:
            path = f"images/{identity}/{k}.jpg"
            (root / path).parent.mkdir(parents=True, exist_ok=True)
            (root / path).write_bytes(jpeg(len(rows), (32, 32)))
            species = "fish" if identity % 2 else "turtle"
            rows.append([len(rows), f"id{identity}", path, species, "Mixed", "left", f"c{identity}-{k // 3}"])
with (root / "metadata.csv").open("w", newline="") as h:
    csv.writer(h).writerows([["image_id", "identity", "path", "species", "dataset", "orientation", "cluster_id"], *rows])
# the fpr-cars group for this copy: the fixture's names of class ids 1,2,3,4,6,11,...,34
import json
from tests.source_fixtures import car_names
names = car_names(36)
ids = [1, 2, 3, 4, 6, 11, 12, 13, 18, 19, 25, 27, 28, 33, 34]
(out / "cars-groups.json").write_text(json.dumps({"car": [names[i] for i in ids]}))
