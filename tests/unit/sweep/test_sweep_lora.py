"""``probekit sweep --lora-r``: rows equal the isolated map of a LoraProbe, resumable, recorded."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

import probekit as pk
from probekit.cli import main
from probekit.demo import corpus
from probekit.errors import InputError
from probekit.sweep import SweepOptions, read_metadata, run_sweep
from probekit.sweep import worker as worker_module

pytest.importorskip("peft")

ROOT = Path(__file__).resolve().parents[3]
LR = 0.05
TARGETS = ("c_attn", "c_fc")
OPTIONS = SweepOptions(
    lr=LR, shard_size=3, watch_matrix=True, device="cpu", lora_r=4, lora_target=TARGETS
)
NUMBERS = ["update_size", "loss_before", "loss_drop", "disturbance"]
QUIET = {"progress": False, "report": lambda m: None}


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("lora-data")
    facts = corpus.facts()
    lines = [json.dumps({"prompt": f.prompt, "target": f.target}) for f in facts[:6]]
    (folder / "data.jsonl").write_text("\n".join(lines) + "\n")
    (folder / "watch.txt").write_text("the cat says\nalice lives in\n")
    return folder / "data.jsonl", folder / "watch.txt"


@pytest.fixture(scope="module")
def clean(files, tmp_path_factory):
    data, watch = files
    return run_sweep(data, tmp_path_factory.mktemp("clean"), OPTIONS, watch=watch, **QUIET)


def test_rows_equal_the_isolated_map_of_a_seeded_lora_probe(clean, files):
    model, tok = pk.load_demo(device="cpu")
    before = pk.fingerprint(model)
    watch = ["the cat says", "alice lives in"]
    examples = [pk.Example(f.prompt, f.target) for f in corpus.facts()[:6]]
    with pk.LoraProbe(model, tok, r=4, target_modules=TARGETS, seed=0, lr=LR, watch=watch) as p:
        # one map per shard: how examples are batched moves float32 rounding (~1e-7)
        shards = [pk.isolated_map(p, examples[k : k + 3], progress=False) for k in (0, 3)]
    assert pk.fingerprint(model).differences(before) == []
    rows = pq.read_table(clean.results).to_pandas()
    frame = pd.concat([s.to_frame() for s in shards], ignore_index=True)
    for column in NUMBERS:
        np.testing.assert_allclose(rows[column], frame[column], rtol=1e-10, atol=1e-15)
    assert (rows.update_size > 0).all() and (rows.disturbance > 0).all()
    long = pq.read_table(clean.watch).to_pandas()
    kl = np.concatenate([np.ravel(s.kl) for s in shards])
    np.testing.assert_allclose(long.kl, kl, rtol=1e-10, atol=1e-15)

    # the full-weight sweep of the same examples measures something else
    full = pk.isolated_map(pk.Probe(model, tok, lr=LR, watch=watch), examples, progress=False)
    assert not np.allclose(rows.update_size, full.to_frame().update_size)


def test_metadata_records_the_adapters(clean):
    meta = read_metadata(clean.results)
    assert (meta["lora_r"], meta["lora_alpha"], meta["lora_target"]) == (4, None, list(TARGETS))
    assert meta["lora_seed"] == 0 and "check_memory" not in meta
    lora = meta["lora"]  # as the workers' probes resolved it
    assert (lora["r"], lora["alpha"], lora["dropout"], lora["seed"]) == (4, 8.0, 0.0, 0)
    assert lora["target_modules"] == sorted(TARGETS) and lora["fan_in_fan_out"] is True
    assert read_metadata(clean.watch) == meta
    for part in sorted((clean.results.parent / "parts").glob("shard-*.parquet")):
        assert read_metadata(part)["lora"] == lora


def test_a_sweep_of_the_weights_records_no_adapters(files, tmp_path):
    data, _ = files
    small = tmp_path / "small.jsonl"
    small.write_text(data.read_text().splitlines()[0] + "\n")
    summary = run_sweep(small, tmp_path / "o", SweepOptions(lr=LR, device="cpu"), **QUIET)
    meta = read_metadata(summary.results)
    assert meta["lora"] is None and meta["lora_r"] is None and meta["lora_seed"] is None


def test_another_process_and_a_resume_give_the_same_files(clean, files, tmp_path, monkeypatch):
    """The adapters come from the seed, not from the RNG state of the process."""
    data, watch = files
    out = tmp_path / "out"
    argv = [str(data), "--watch", str(watch), "--out", str(out), "--lr", str(LR)]
    argv += ["--shard-size", "3", "--watch-matrix", "--device", "cpu", "--no-progress"]
    argv += ["--lora-r", "4", "--lora-target", " c_attn, c_fc", "--no-check-memory"]
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    script = "import sys, torch; torch.rand(7); from probekit.cli import main; "
    script += "sys.exit(main(sys.argv[1:]))"
    subprocess.run([sys.executable, "-c", script, "sweep", *argv], env=env, check=True,
                   capture_output=True, timeout=300)  # fmt: skip
    for name in ("results.parquet", "watch.parquet"):
        assert (out / name).read_bytes() == (clean.results.parent / name).read_bytes()

    (out / "parts" / "shard-000001.parquet").unlink()  # shard 1 lost: computed again here
    computed: list[int] = []
    compute = worker_module.ShardWorker.compute

    def counted(self, shard):
        computed.append(shard.index)
        return compute(self, shard)

    monkeypatch.setattr(worker_module.ShardWorker, "compute", counted)
    resumed = run_sweep(data, out, OPTIONS, watch=watch, **QUIET)
    assert computed == [1] and resumed.computed == 1
    for name in ("results.parquet", "watch.parquet"):
        assert (out / name).read_bytes() == (clean.results.parent / name).read_bytes()


def test_the_adapter_settings_must_match_to_resume(clean, files):
    data, watch = files
    for change in ({"lora_r": 8}, {"lora_seed": 1}, {"lora_alpha": 4.0}, {"lora_r": None,
                   "lora_target": None}):  # fmt: skip
        options = SweepOptions(**{**OPTIONS.__dict__, **change})
        with pytest.raises(InputError, match=f"other settings.*{next(iter(change))}"):
            run_sweep(data, clean.results.parent, options, watch=watch, **QUIET)


def test_the_memory_check_refuses_and_no_check_memory_sweeps_anyway(files, tmp_path, monkeypatch,
                                                                    capsys):  # fmt: skip
    from probekit.core import memory

    data, _ = files
    small = tmp_path / "small.jsonl"
    small.write_text("\n".join(data.read_text().splitlines()[:2]) + "\n")
    monkeypatch.setattr(memory, "free_bytes", lambda device: 1024)  # 1 KiB free
    argv = ["sweep", str(small), "--device", "cpu", "--no-progress", "--lora-r", "2"]
    assert main([*argv, "--out", str(tmp_path / "refused")]) == 2
    err = capsys.readouterr().err
    assert "will not fit" in err and "--no-check-memory sweeps anyway" in err
    assert main([*argv, "--out", str(tmp_path / "anyway"), "--no-check-memory"]) == 0
    rows = pq.read_table(tmp_path / "anyway" / "results.parquet").to_pandas()
    assert len(rows) == 2 and (rows.update_size > 0).all()
    # the check decides no number: the refused folder's sweep resumes without it
    assert main([*argv, "--out", str(tmp_path / "refused"), "--no-check-memory"]) == 0


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"lora_alpha": 4.0}, "need --lora-r"),
        ({"lora_target": ("c_attn",)}, "need --lora-r"),
        ({"lora_r": 0}, "positive integer"),
        ({"lora_r": 2, "lora_target": ()}, "at least one module"),
    ],
)
def test_lora_options_are_checked(change, message):
    with pytest.raises(InputError, match=message):
        SweepOptions(**change)


def test_a_target_the_model_lacks_is_refused_with_the_cli_exit_code(files, tmp_path, capsys):
    data, _ = files
    argv = ["sweep", str(data), "--out", str(tmp_path / "o"), "--device", "cpu", "--no-progress"]
    assert main([*argv, "--lora-r", "2", "--lora-target", "q_proj"]) == 2
    assert "LoRA adapters could not be attached" in capsys.readouterr().err
