"""Leakage check for experiments/pretrain_cpu_many.yaml: the CinC-2017 shards, made by the exact command the
experiment uses (``make prepare-cinc2017-trainval``, part of ``make prepare-cpu-many``), hold every train and
validation record and no test record; the other shards are cpu-real's, checked by ``test_cpu_real_leakage.py``
(no MIT-BIH DS2, no PTB-XL fold 9-10)."""

import re
import subprocess
from pathlib import Path

import pytest
import yaml
from conftest import REPO, SHARED_DATA, needs_shared_data

from datamodules.readers.cinc2017 import split_of
from datamodules.shards import iter_records


def test_experiment_reads_only_checked_shard_folders():
    config = yaml.safe_load((REPO / "experiments" / "pretrain_cpu_many.yaml").read_text())
    shards = config["data"]["init_args"]["shards"]
    makefile = (REPO / "Makefile").read_text()
    real = re.search(r"^CPU_REAL_SHARDS \?= (.+)$", makefile, re.M).group(1)
    many = re.search(r"^CPU_MANY_SHARDS \?= (.+)$", makefile, re.M).group(1)
    checked = {f"{many}/cinc2017_trainval"} | {
        f"{real}/{d}" for d in ("mitdb_ds1", "ptbxl_f1-8", "cinc2021", "cpsc2021")
    }
    assert set(shards) == checked


@needs_shared_data
@pytest.mark.slow
def test_cinc2017_shards_hold_no_test_record(tmp_path: Path):
    subprocess.run(
        ["make", "-s", "prepare-cinc2017-trainval", f"CPU_MANY_SHARDS={tmp_path}", f"SHARED={SHARED_DATA}"],
        cwd=REPO,
        check=True,
        capture_output=True,
    )
    names = {
        r.record_id.split("/")[1].split("_")[0]
        for shard in sorted((tmp_path / "cinc2017_trainval").glob("*.parquet"))
        for r in iter_records(shard)
    }
    splits = {split_of(n) for n in names}
    assert splits == {"train", "val"}, splits
    assert len(names) == 5000  # every train and validation record, none of A05001-A06000
