"""Leakage check for experiments/pretrain_cpu_real.yaml: its shards, made by the exact command the experiment
uses (``make prepare-cpu-real``), hold no MIT-BIH DS2 record and no PTB-XL fold 9-10 record."""

import subprocess
from pathlib import Path

import pandas as pd
import pytest
from conftest import REPO, SHARED_DATA, needs_shared_data

from datamodules.shards import iter_records

DS2 = {
    "100",
    "103",
    "105",
    "111",
    "113",
    "117",
    "121",
    "123",
    "200",
    "202",
    "210",
    "212",
    "213",
    "214",
    "219",
    "221",
    "222",
    "228",
    "231",
    "232",
    "233",
    "234",
}
PACED = {"102", "104", "107", "217"}


@needs_shared_data
@pytest.mark.slow
def test_pretraining_shards_hold_no_probe_test_record(tmp_path: Path):
    subprocess.run(
        ["make", "-s", "prepare-cpu-real", f"CPU_REAL_SHARDS={tmp_path}", f"SHARED={SHARED_DATA}"],
        cwd=REPO,
        check=True,
        capture_output=True,
    )
    records = [r for shard in sorted(tmp_path.glob("*/*.parquet")) for r in iter_records(shard)]
    by_source: dict[str, list] = {}
    for r in records:
        by_source.setdefault(r.source, []).append(r)
    assert set(by_source) == {"mitdb", "ptbxl", "cinc2021", "cpsc2021"}

    mitdb_records = {r.record_id.split("/")[1].split("_")[0] for r in by_source["mitdb"]}
    assert mitdb_records and not mitdb_records & (DS2 | PACED), mitdb_records & (DS2 | PACED)
    assert len(mitdb_records) == 22  # every DS1 record, none other

    folds = pd.read_csv(SHARED_DATA / "ptbxl" / "ptbxl_database.csv", index_col="ecg_id")["strat_fold"]
    ecg_ids = [int(r.record_id.split("/")[1]) for r in by_source["ptbxl"]]
    assert folds.loc[ecg_ids].max() <= 8
    assert len(ecg_ids) == int((folds <= 8).sum())  # every fold 1-8 record, none of 9-10
