"""``probekit sweep``: Parquet rows equal the isolated map, metadata, resume after kill -9."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

import probekit as pk
from probekit.cli import main
from probekit.demo import corpus
from probekit.errors import InputError
from probekit.sweep import SweepOptions, read_metadata, run_sweep
from probekit.sweep import worker as worker_module

ROOT = Path(__file__).resolve().parents[3]
LR = 0.01
OPTIONS = SweepOptions(lr=LR, shard_size=4, watch_matrix=True, device="cpu")
NUMBERS = ["update_size", "loss_before", "loss_drop", "disturbance"]


def facts() -> list[tuple[str, str]]:
    """16 examples the demo model knows, and contradictions of some of them."""
    found = corpus.facts()
    pairs = [(f.prompt, f.target) for f in found[:12]]
    pairs += [(w.prompt, w.target) for w in map(corpus.contradiction, found[:4])]
    return pairs


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("sweep-data")
    lines = [json.dumps({"prompt": p, "target": t}) for p, t in facts()]
    lines.insert(5, '{"prompt": "broken"')  # line 6
    (folder / "data.jsonl").write_text("\n".join(lines) + "\n")
    watch = [json.dumps({"prompt": f.prompt, "target": f.target}) for f in corpus.facts()[20:23]]
    watch.append(json.dumps({"prompt": "the cat says"}))
    (folder / "watch.jsonl").write_text("\n".join(watch) + "\n")
    return folder / "data.jsonl", folder / "watch.jsonl"


@pytest.fixture(scope="module")
def clean(files, tmp_path_factory):
    data, watch = files
    out = tmp_path_factory.mktemp("clean")
    summary = run_sweep(
        data, out, OPTIONS, watch=watch, on_bad_line="skip", progress=False, report=lambda m: None
    )
    return summary


def test_rows_equal_the_isolated_map(clean, files):
    model, tok = pk.load_demo(device="cpu")
    watch = [pk.Example(f.prompt, f.target) for f in corpus.facts()[20:23]] + ["the cat says"]
    probe = pk.Probe(model, tok, optimizer="sgd", lr=LR, watch=watch)
    examples = [pk.Example(p, t) for p, t in facts()]
    expected = pk.isolated_map(probe, examples, progress=False)
    rows = pq.read_table(clean.results).to_pandas()
    assert rows["index"].tolist() == list(range(16))
    assert rows["line"].tolist() == [*range(1, 6), *range(7, 18)]  # line 6 is the bad one
    assert list(zip(rows.prompt, rows.target, strict=True)) == facts()
    frame = expected.to_frame()
    for column in NUMBERS:
        np.testing.assert_allclose(rows[column], frame[column], rtol=1e-10, atol=1e-15)
    assert (rows.update_size > 0).all() and (rows.disturbance > 0).all()

    long = pq.read_table(clean.watch).to_pandas()
    assert len(long) == 16 * 4
    assert long.watch_label.tolist() == list(expected.watch_labels) * 16
    np.testing.assert_allclose(long.kl, np.ravel(expected.kl), rtol=1e-10, atol=1e-15)
    np.testing.assert_allclose(long.dlogp, np.ravel(expected.dlogp), rtol=1e-10, atol=1e-15)
    assert long.top1_flip.tolist() == list(np.ravel(expected.top1_flip))


def test_metadata_records_model_options_hashes_and_bad_lines(clean, files):
    meta = read_metadata(clean.results)
    assert meta["model"] == "demo" and meta["revision"] is None
    assert meta["model_commit"] is None  # not from the hub
    assert (meta["optimizer"], meta["lr"], meta["steps"], meta["method"]) == ("sgd", LR, 1, "exact")
    assert meta["probekit_version"] == pk.__version__
    import hashlib

    assert meta["dataset_sha256"] == hashlib.sha256(files[0].read_bytes()).hexdigest()
    assert meta["watch_items"] == 4 and meta["examples"] == 16
    assert meta["bad_lines"] == 1 and meta["bad_line_list"][0][0] == 6
    assert read_metadata(clean.watch) == meta


def test_first_order_and_tokenizer_refusals(files, tmp_path):
    data, watch = files
    lines = data.read_text().splitlines()[:5]
    lines.insert(2, json.dumps({"prompt": "the cat", "target": "  "}))  # no target token
    small = tmp_path / "small.jsonl"
    small.write_text("\n".join(lines) + "\n")
    options = SweepOptions(lr=LR, shard_size=2, method="first_order", check=1, device="cpu")
    with pytest.raises(InputError, match="line 3: target has no tokens"):
        run_sweep(small, tmp_path / "fatal", options, watch=watch, progress=False)
    messages: list[str] = []
    summary = run_sweep(
        small,
        tmp_path / "out",
        options,
        watch=watch,
        on_bad_line="skip",
        progress=False,
        report=messages.append,
    )
    rows = pq.read_table(summary.results).to_pandas()
    assert summary.examples == len(rows) == 5 and summary.bad_lines == 1
    assert rows.line.tolist() == [1, 2, 4, 5, 6]
    assert any("tokenizer refused" in m for m in messages)
    assert rows.disturbance.isna().all()  # a KL is not predicted to first order
    assert (rows.update_size > 0).all() and (rows.loss_drop > 0).all()
    meta = read_metadata(summary.results)
    assert meta["method"] == "first_order" and meta["bad_line_list"][0][0] == 3
    assert meta["first_order_residual_max"] >= 0  # the check ran (one example a shard)


def test_settings_must_match_to_resume(clean, files, tmp_path):
    data, watch = files
    with pytest.raises(InputError, match=r"other settings.*lr"):
        run_sweep(
            data,
            clean.results.parent,
            SweepOptions(lr=0.1, shard_size=4, watch_matrix=True),
            watch=watch,
            on_bad_line="skip",
            progress=False,
        )
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(InputError, match="not empty"):
        run_sweep(data, tmp_path, OPTIONS, watch=watch, on_bad_line="skip", progress=False)


def test_cli_bad_line_is_fatal_by_default(files, tmp_path, capsys):
    data, watch = files
    code = main(
        ["sweep", str(data), "--watch", str(watch), "--out", str(tmp_path / "o"), "--no-progress"]
    )
    assert code == 2
    err = capsys.readouterr().err
    assert "line 6:" in err and "--on-bad-line skip" in err
    assert not (tmp_path / "o").exists()


KILLABLE = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from probekit.sweep import worker

    marker, out = Path(sys.argv[1]), Path(sys.argv[2])
    compute = worker.ShardWorker.compute

    def slow(self, shard):
        if shard.index == 2:  # mid-shard: a half-written part, then hang until killed
            (out / "parts" / "shard-000002.parquet.999.tmp").write_bytes(b"PAR1 half")
            marker.write_text("in shard 2")
            time.sleep(600)
        return compute(self, shard)

    worker.ShardWorker.compute = slow
    from probekit.cli import main
    sys.exit(main(sys.argv[3:]))
    """
)


def test_resume_after_kill_9_equals_a_clean_run(clean, files, tmp_path, monkeypatch):
    data, watch = files
    out, marker = tmp_path / "out", tmp_path / "marker"
    argv = [
        str(data),
        "--watch",
        str(watch),
        "--out",
        str(out),
        "--lr",
        str(LR),
        "--shard-size",
        "4",
        "--watch-matrix",
        "--on-bad-line",
        "skip",
        "--device",
        "cpu",
        "--no-progress",
    ]
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    process = subprocess.Popen(
        [sys.executable, "-c", KILLABLE, str(marker), str(out), "sweep", *argv],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 240
        while not marker.exists():
            assert process.poll() is None, process.communicate()[1].decode()[-2000:]
            assert time.monotonic() < deadline, "the sweep never reached shard 2"
            time.sleep(0.2)
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait()
    assert process.returncode == -signal.SIGKILL
    parts = out / "parts"
    assert sorted(p.name for p in parts.glob("shard-*.parquet")) == [
        "shard-000000.parquet",
        "shard-000001.parquet",
    ]
    before = {p.name: p.stat().st_mtime_ns for p in parts.iterdir()}
    assert not (out / "results.parquet").exists()

    computed: list[int] = []
    compute = worker_module.ShardWorker.compute

    def counted(self, shard):
        computed.append(shard.index)
        return compute(self, shard)

    monkeypatch.setattr(worker_module.ShardWorker, "compute", counted)
    messages: list[str] = []
    summary = run_sweep(
        data, out, OPTIONS, watch=watch, on_bad_line="skip", progress=False, report=messages.append
    )
    assert computed == [2, 3]  # nothing computed twice, nothing lost
    assert summary.computed == 2 and summary.shards == 4
    assert any("2 of 4 shards already done" in m for m in messages)
    for name in ("shard-000000.parquet", "watch-000000.parquet", "shard-000001.parquet"):
        assert (parts / name).stat().st_mtime_ns == before[name]
    assert not list(parts.glob("*.tmp"))
    for name in ("results.parquet", "watch.parquet"):
        assert (out / name).read_bytes() == (clean.results.parent / name).read_bytes()

    computed.clear()  # a finished sweep re-run computes nothing and rewrites the same files
    again = run_sweep(
        data, out, OPTIONS, watch=watch, on_bad_line="skip", progress=False, report=lambda m: None
    )
    assert computed == [] and again.computed == 0
    assert summary.results.read_bytes() == clean.results.read_bytes()


def test_restart_discards_the_previous_sweep(files, tmp_path):
    data, watch = files
    small = tmp_path / "small.jsonl"
    small.write_text("\n".join(data.read_text().splitlines()[:3]) + "\n")
    first = run_sweep(
        small,
        tmp_path / "o",
        SweepOptions(lr=LR, shard_size=2, device="cpu"),
        watch=watch,
        progress=False,
    )
    options = SweepOptions(lr=0.1, shard_size=2, device="cpu")
    again = run_sweep(small, tmp_path / "o", options, watch=watch, progress=False, restart=True)
    assert first.computed == again.computed == 2
    assert read_metadata(again.results)["lr"] == 0.1
    with pytest.raises(InputError, match="refusing to clear"):
        (tmp_path / "mine").mkdir()
        (tmp_path / "mine" / "notes.txt").write_text("keep me")
        run_sweep(small, tmp_path / "mine", options, watch=watch, restart=True, progress=False)
    assert (tmp_path / "mine" / "notes.txt").read_text() == "keep me"


def test_a_shard_of_refused_examples_is_done_and_empty(files, tmp_path):
    data, watch = files
    lines = data.read_text().splitlines()[:2]
    lines.insert(1, json.dumps({"prompt": "the cat", "target": "  "}))  # line 2: no token
    small = tmp_path / "small.jsonl"
    small.write_text("\n".join(lines) + "\n")
    options = SweepOptions(lr=LR, shard_size=1, watch_matrix=True, device="cpu")
    summary = run_sweep(
        small,
        tmp_path / "o",
        options,
        watch=watch,
        on_bad_line="skip",
        progress=False,
        report=lambda m: None,
    )
    assert summary.shards == 3 and summary.examples == 2 and summary.bad_lines == 1
    assert pq.read_table(summary.watch).column("line").to_pylist() == [1] * 4 + [3] * 4


def test_a_model_from_a_local_folder(tmp_path):
    from tests.tiny import make_gpt2, make_tokenizer

    tok = make_tokenizer()
    make_gpt2(tok).save_pretrained(tmp_path / "model")
    tok.save_pretrained(tmp_path / "model")
    pairs = [("alice lives in", " paris"), ("the cat says", " meow"), ("2 plus 2 is", " 4")]
    data = tmp_path / "data.jsonl"
    data.write_text("".join(json.dumps({"prompt": p, "target": t}) + "\n" for p, t in pairs))
    watch = tmp_path / "watch.txt"
    watch.write_text("the dog says\nbob lives in\n")
    folder = str(tmp_path / "model")
    code = main(
        [
            "sweep",
            str(data),
            "--watch",
            str(watch),
            "--out",
            str(tmp_path / "o"),
            "--model",
            folder,
            "--device",
            "cpu",
            "--optimizer",
            "adam",
            "--lr",
            "0.001",
            "--layers",
            "1",
            "--no-progress",
        ]
    )
    assert code == 0
    model, tok = pk.load(folder, device="cpu")
    probe = pk.Probe(
        model, tok, optimizer="adam", lr=0.001, layers=[1], watch=["the dog says", "bob lives in"]
    )
    expected = pk.isolated_map(probe, [pk.Example(p, t) for p, t in pairs]).to_frame()
    rows = pq.read_table(tmp_path / "o" / "results.parquet").to_pandas()
    for column in NUMBERS:
        np.testing.assert_allclose(rows[column], expected[column], rtol=1e-10, atol=1e-15)
    meta = read_metadata(tmp_path / "o" / "results.parquet")
    assert (meta["model"], meta["optimizer"], meta["layers"]) == (folder, "adam", [1])


def test_engine_options_are_checked_before_anything_is_written(files, tmp_path):
    data, watch = files
    for kwargs, message in [
        ({"workers": 2}, "for --engine ray"),
        ({"address": "auto"}, "for --engine ray"),
        ({"engine": "ray", "workers": 0}, "positive integer"),
        ({"engine": "spark"}, "unknown engine"),
    ]:
        with pytest.raises(InputError, match=message):
            run_sweep(data, tmp_path / "o", OPTIONS, watch=watch, **kwargs)
    assert not (tmp_path / "o").exists()


def test_one_sweep_writes_to_a_folder_at_a_time(clean, files):
    from probekit.sweep.shards import OutputFolder

    data, watch = files
    manifest = json.loads((clean.results.parent / "manifest.json").read_text())
    folder = OutputFolder.open(clean.results.parent, manifest["settings"], manifest["shards"])
    try:
        with pytest.raises(InputError, match="another sweep is writing"):
            run_sweep(data, clean.results.parent, OPTIONS, watch=watch, on_bad_line="skip")
    finally:
        folder.close()
