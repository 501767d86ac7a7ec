"""FSDP2 on 2 CPU processes (gloo) through Lightning's ModelParallelStrategy, against a 1-process run on the
same global batches: parameter shards, losses, the non-finite skip, the EMA update, sharded checkpoints
(resume and consolidation); bf16 and activation checkpointing; FSDP1 on GPUs."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import fsdp_worker
import pytest
import torch
import torch.distributed as dist
from conftest import REPO, TINY_MODULE, random_batch
from filelock import FileLock
from torch.distributed.device_mesh import init_device_mesh

from ecg_dino.checkpoint import load_backbone
from ecg_dino.consolidate import consolidate
from ecg_dino.hparams import GramArgs, KoLeoArgs
from ecg_dino.module import DinoPretrainModule
from ecg_dino.parallel import close_process_group, shard_module

WORKER = Path(fsdp_worker.__file__)
WORLD = 2


def run_worker(out: Path, world: int, kind: str) -> None:
    """The worker script on ``world`` processes (Lightning launches the other ranks), or fail with its output."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO / "tests"), str(REPO)])}  # this checkout's code
    proc = subprocess.run(
        [sys.executable, str(WORKER), str(out), str(world), kind],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-5000:]


def load_ranks(out: Path, phase: str, world: int) -> list[dict]:
    return [torch.load(out / f"{phase}_rank{r}.pt", weights_only=False) for r in range(world)]


@pytest.fixture(scope="session")
def fsdp2_runs(tmp_path_factory: pytest.TempPathFactory, worker_id: str) -> dict:
    """The 2-rank FSDP2 run (with a resume from its step-2 checkpoint) and the 1-process reference, once per
    session even under pytest-xdist."""
    root = tmp_path_factory.getbasetemp()
    if worker_id != "master":
        root = root.parent  # this session's directory, shared by the xdist workers
    out = root / "fsdp2_runs"
    with FileLock(str(root / "fsdp2_runs.lock")):
        if not (out / f"resumed_rank{WORLD - 1}.pt").exists():
            out.mkdir(exist_ok=True)
            run_worker(out, WORLD, "fsdp2")
    _, _, single = fsdp_worker.fit(tmp_path_factory.mktemp("single"), 1)
    return {
        "out": out,
        "first": load_ranks(out, "first", WORLD),
        "resumed": load_ranks(out, "resumed", WORLD),
        "single": single,
    }


def mean_losses(ranks: list[dict]) -> dict[int, float]:
    return {step: sum(r["losses"][step] for r in ranks) / len(ranks) for step in ranks[0]["losses"]}


@pytest.mark.slow
def test_each_rank_holds_half_of_every_parameter(fsdp2_runs: dict) -> None:
    first = fsdp2_runs["first"]
    for name, (full, _) in first[0]["shards"].items():
        locals_ = [r["shards"][name][1] for r in first]
        assert sum(torch.Size(s).numel() for s in locals_) == torch.Size(full).numel(), name
        if full[0] >= WORLD:  # FSDP2 shards dim 0: ceil and floor of half the rows
            assert sorted(s[0] for s in locals_) == [full[0] // 2, -(-full[0] // 2)], name
    assert any(n.startswith("teacher.") for n in first[0]["shards"])
    assert any(n.startswith("gram_teacher.") for n in first[0]["shards"])


@pytest.mark.slow
def test_losses_equal_one_process_on_the_same_global_batch(fsdp2_runs: dict) -> None:
    single, first = fsdp2_runs["single"]["losses"], fsdp2_runs["first"]
    sharded = mean_losses(first)
    nan_step = fsdp_worker.NAN_STEP
    for step in single:
        if step != nan_step:
            assert sharded[step] == pytest.approx(single[step], rel=1e-5), step
    # The last rank's loss was NaN at nan_step: every rank skipped the update and counted it.
    assert first[-1]["losses"][nan_step] != first[-1]["losses"][nan_step]
    assert all(r["skipped_update"] == 0.0 and r["nonfinite_steps"] == 1.0 for r in first)
    assert fsdp2_runs["single"]["skipped_update"] == 0.0


@pytest.mark.slow
def test_teachers_stay_in_eval_mode_under_fsdp2(fsdp2_runs: dict) -> None:
    for phase in ("first", "resumed"):
        for rank in fsdp2_runs[phase]:
            assert rank["teacher_in_train_mode"] and not any(rank["teacher_in_train_mode"]), phase


def test_online_probe_under_fsdp2_matches_one_process(fsdp2_runs: dict) -> None:
    """Every rank embeds (the sharded teacher needs all of them); rank 0 alone fits and holds the AUROC."""
    single, (rank0, rank1) = fsdp2_runs["single"], fsdp2_runs["first"]
    key = "online_probe/synthetic/auroc"
    assert [h["step"] for h in rank0["online_probe"]] == [0, 2, 4] == [h["step"] for h in single["online_probe"]]
    assert all(key not in h for h in rank1["online_probe"])
    for sharded, reference in zip(rank0["online_probe"], single["online_probe"]):
        assert sharded[key] == pytest.approx(reference[key], abs=0.02)
    assert single["online_probe"][0][key] > 0.9  # the sine is visible to random weights


def test_ema_teacher_shards_follow_the_formula(fsdp2_runs: dict) -> None:
    for r in fsdp2_runs["first"] + fsdp2_runs["resumed"]:
        assert r["ema_error"] < 1e-6


@pytest.mark.slow
def test_sharded_checkpoint_resumes_with_the_same_losses(fsdp2_runs: dict) -> None:
    for first, resumed in zip(fsdp2_runs["first"], fsdp2_runs["resumed"]):
        assert resumed["losses"].keys() == {2, 3}
        for step, loss in resumed["losses"].items():
            assert loss == pytest.approx(first["losses"][step], rel=1e-6), step
        assert resumed["nonfinite_steps"] == 1.0  # the guard's count came back with the checkpoint


@pytest.mark.slow
def test_consolidated_checkpoint_loads_the_same_teacher(fsdp2_runs: dict, tmp_path: Path) -> None:
    sharded = fsdp2_runs["out"] / "ckpt" / "last.ckpt"
    assert sharded.is_dir() and len(list(sharded.glob("*.distcp"))) == WORLD
    assert not list(sharded.parent.glob("*.partial")) and not list(sharded.parent.glob("*.old"))
    out = consolidate(sharded, tmp_path / "full.ckpt")
    ckpt = torch.load(out, map_location="cpu", weights_only=True)
    assert ckpt["global_step"] == fsdp_worker.MAX_STEPS and "optimizer_0" not in ckpt
    backbone = load_backbone(out)
    probe = fsdp2_runs["first"][0]["probe"]
    with torch.no_grad():
        got = backbone.forward_features(**random_batch(B=2, seed=99)["global"], sample_rate_hz=250.0)
    torch.testing.assert_close(got["cls"], probe["cls"])
    torch.testing.assert_close(got["patches"], probe["patches"])


def test_bf16_and_activation_checkpointing_under_fsdp2(tmp_path: Path) -> None:
    """One-rank mesh in this process: bf16 all-gathers and compute, fp32 gradients close to fp32 training."""
    dist.init_process_group("gloo", store=dist.FileStore(str(tmp_path / "store"), 1), rank=0, world_size=1)
    try:
        mesh = init_device_mesh("cpu", (1,), mesh_dim_names=("data_parallel",))
        kwargs = dict(TINY_MODULE, gram=GramArgs(loss_weight=1.0), koleo=KoLeoArgs(loss_weight=0.0))
        reference, module = DinoPretrainModule(**kwargs).train(), DinoPretrainModule(**kwargs).train()
        module.student.backbone.set_grad_checkpointing(True)
        shard_module(module, mesh, "bf16-mixed")
        batch = random_batch()
        with torch.autocast("cpu", dtype=torch.bfloat16):
            loss = module.compute_losses(batch, 0, 0.04)["loss"]
        loss.backward()
        expected = reference.compute_losses(batch, 0, 0.04)["loss"]
        expected.backward()
        assert float(loss) == pytest.approx(float(expected), rel=1e-2)
        for (name, p), ref in zip(module.student.named_parameters(), reference.student.parameters()):
            if ref.grad is not None:
                grad = p.grad.full_tensor()
                assert grad.dtype == torch.float32, name
                assert (grad - ref.grad).norm() <= 0.1 * ref.grad.norm() + 1e-6, name
    finally:
        dist.destroy_process_group()


def test_close_process_group_ends_the_group_and_may_be_repeated(tmp_path: Path) -> None:
    """The CLI and the worker call it after a run, so gloo threads never outlive the interpreter."""
    dist.init_process_group("gloo", store=dist.FileStore(str(tmp_path / "store"), 1), rank=0, world_size=1)
    close_process_group()
    assert not dist.is_initialized()
    close_process_group()


@pytest.mark.gpu
@pytest.mark.slow
@pytest.mark.skipif(torch.cuda.device_count() < WORLD, reason=f"FSDP1 (Lightning's FSDPStrategy) needs {WORLD} GPUs")
def test_fsdp1_two_gpus_match_one_process(tmp_path: Path) -> None:
    run_worker(tmp_path, WORLD, "fsdp1")
    first, resumed = load_ranks(tmp_path, "first", WORLD), load_ranks(tmp_path, "resumed", WORLD)
    _, _, single = fsdp_worker.fit(tmp_path / "single", 1)
    sharded = mean_losses(first)
    for step in single["losses"]:
        if step != fsdp_worker.NAN_STEP:
            assert sharded[step] == pytest.approx(single["losses"][step], rel=1e-3), step
    for r in first + resumed:
        assert r["ema_error"] < 1e-5 and r["nonfinite_steps"] == 1.0
    for f, r in zip(first, resumed):
        for step, loss in r["losses"].items():
            assert loss == pytest.approx(f["losses"][step], rel=1e-5), step
