"""Their load_cars_data.py unchanged; only datasets.load_dataset("Donghyun99/Stanford-Cars") is
pointed at the local parquet copy (no hub here)."""
import os

REFS = os.environ.get("REFS", "/tmp/refs")  # the fetched reference repositories
import runpy, sys
import datasets
def local(name, *a, **k):
    assert name == "Donghyun99/Stanford-Cars"
    return datasets.DatasetDict({s: datasets.Dataset.from_parquet(f"src/cars/data/{s}-00000-of-00001.parquet") for s in ("train", "test")})
datasets.load_dataset = local
sys.argv = ["load_cars_data.py", "--out_path", "theirs/cars"]
runpy.run_path(REFS + "/OSU-MLB+Finer-Personalization-Rank/data_load_scripts/load_cars_data.py", run_name="__main__")
