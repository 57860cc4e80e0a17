"""``probekit sweep --engine ray``: two local CPU workers give the single-process files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from probekit.demo import corpus
from probekit.sweep import SweepOptions, ray_engine, run_sweep

ray = pytest.importorskip("ray", reason="Ray is not installed (pip install 'probekit[ray]')")

ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="module")
def local_ray():
    ray_engine.start(
        num_cpus=2, runtime_env={"env_vars": {"PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}}
    )
    yield ray
    ray.shutdown()


@pytest.mark.slow
def test_ray_equals_single_process_and_resumes(local_ray, tmp_path):
    facts = corpus.facts()[:16]
    data = tmp_path / "data.jsonl"
    data.write_text(
        "".join(json.dumps({"prompt": f.prompt, "target": f.target}) + "\n" for f in facts)
    )
    watch = tmp_path / "watch.txt"
    watch.write_text("the cat says\nalice lives in\n")
    options = SweepOptions(lr=0.01, shard_size=4, watch_matrix=True, device="cpu")
    common = {"watch": watch, "progress": False, "report": lambda m: None}
    single = run_sweep(data, tmp_path / "single", options, **common)
    spread = run_sweep(data, tmp_path / "ray", options, engine="ray", workers=2, **common)
    assert spread.computed == 4 and spread.examples == 16
    for name in ("results.parquet", "watch.parquet"):
        assert (tmp_path / "ray" / name).read_bytes() == (tmp_path / "single" / name).read_bytes()

    # Resumable the same way: drop two finished parts, Ray computes exactly those again.
    for k in (1, 3):
        (tmp_path / "ray" / "parts" / f"shard-00000{k}.parquet").unlink()
    resumed = run_sweep(data, tmp_path / "ray", options, engine="ray", workers=2, **common)
    assert resumed.computed == 2
    assert resumed.results.read_bytes() == single.results.read_bytes()


@pytest.mark.slow
def test_ray_workers_build_the_same_lora_probe(local_ray, tmp_path):
    """Every actor attaches the same seeded adapters: the files equal the single-process ones."""
    pytest.importorskip("peft")
    facts = corpus.facts()[:6]
    data = tmp_path / "data.jsonl"
    data.write_text(
        "".join(json.dumps({"prompt": f.prompt, "target": f.target}) + "\n" for f in facts)
    )
    options = SweepOptions(
        lr=0.05, shard_size=2, device="cpu", lora_r=4, lora_target=("c_attn",), lora_seed=3
    )
    common = {"progress": False, "report": lambda m: None}
    single = run_sweep(data, tmp_path / "single", options, **common)
    spread = run_sweep(data, tmp_path / "ray", options, engine="ray", workers=2, **common)
    assert spread.computed == 3 and spread.metadata["lora"]["seed"] == 3
    assert spread.results.read_bytes() == single.results.read_bytes()
