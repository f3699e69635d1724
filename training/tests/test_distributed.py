"""A two-process torchrun run on CPU (gloo): both ranks end with identical parameters."""

import json
import os
import socket
import subprocess
import sys

from conftest import MICRO, TRAINING_DIR


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_torchrun_two_processes(synthetic_folder, tmp_path):
    out = tmp_path / "run"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_addr", "127.0.0.1",
           "--master_port", str(_free_port()), "-m", "clmae.train", "--config", MICRO, "--method", "clmae",
           "--data", str(synthetic_folder), "--output-dir", str(out), "--epochs", "2", "--batch-size", "8",
           "--num-workers", "0", "--threads", "1", "--eval-count", "4", "--device", "cpu"]
    env = {**os.environ, "PYTHONPATH": str(TRAINING_DIR) + os.pathsep + os.environ.get("PYTHONPATH", ""),
           "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(cmd, cwd=TRAINING_DIR, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    records = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    run = next(r for r in records if r["type"] == "run")
    assert run["args"]["world_size"] == 2 and run["args"]["effective_batch_size"] == 16
    assert run["iters_per_epoch"] == 4  # 64 images / (8 x 2)
    check = next(r for r in records if r["type"] == "ddp_check")
    assert check["identical"] and len(check["parameter_sha256"]) == 2
    assert len(set(check["parameter_sha256"])) == 1
    assert (out / "checkpoint.pt").is_file()
