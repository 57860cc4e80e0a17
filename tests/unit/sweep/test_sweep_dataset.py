"""Reading a sweep's dataset and watch file: valid lines, bad lines with their numbers."""

from __future__ import annotations

import json

import pytest

from probekit.errors import InputError
from probekit.sweep.dataset import read_dataset, read_watch
from probekit.sweep.options import parse_layers
from probekit.sweep.shards import plan

LINES = [
    json.dumps({"prompt": "alice lives in", "target": " paris", "id": 7}),  # 1: extra keys ok
    "{not json",  # 2
    "",  # 3: blank, ignored
    json.dumps({"prompt": "bob lives in"}),  # 4: no target
    json.dumps(["a", "b"]),  # 5: not an object
    json.dumps({"prompt": "", "target": " x"}),  # 6: empty prompt
    json.dumps({"prompt": "carol lives in", "target": 3}),  # 7: target not a string
    json.dumps({"prompt": "the cat says", "target": " meow ☃"}),  # 8
]


def write(tmp_path, lines, name="data.jsonl", raw: bytes | None = None):
    path = tmp_path / name
    path.write_bytes(raw if raw is not None else "\n".join(lines).encode() + b"\n")
    return path


def test_skip_keeps_valid_lines_with_their_numbers(tmp_path):
    data = read_dataset(write(tmp_path, LINES), on_bad_line="skip")
    assert [(r.index, r.line, r.prompt, r.target) for r in data.records] == [
        (0, 1, "alice lives in", " paris"),
        (1, 8, "the cat says", " meow ☃"),
    ]
    assert [b.line for b in data.bad] == [2, 4, 5, 6, 7]
    reasons = {b.line: b.reason for b in data.bad}
    assert "not valid JSON" in reasons[2]
    assert '"target"' in reasons[4] and '"target"' in reasons[7]
    assert "JSON object" in reasons[5]
    assert '"prompt"' in reasons[6]


def test_error_lists_every_bad_line_number(tmp_path):
    with pytest.raises(InputError) as info:
        read_dataset(write(tmp_path, LINES), on_bad_line="error")
    message = str(info.value)
    for line in (2, 4, 5, 6, 7):
        assert f"line {line}:" in message
    assert "line 1:" not in message and "line 8:" not in message
    assert "--on-bad-line skip" in message


def test_invalid_utf8_and_crlf(tmp_path):
    good = json.dumps({"prompt": "a", "target": " b"}).encode()
    path = write(tmp_path, [], raw=good + b"\r\n" + b'{"prompt": "\xff", "target": "x"}\r\n' + good)
    data = read_dataset(path, on_bad_line="skip")
    assert [r.line for r in data.records] == [1, 3]
    assert [(b.line, b.reason.split(" (")[0]) for b in data.bad] == [(2, "not UTF-8")]


def test_hash_follows_the_bytes(tmp_path):
    a = read_dataset(write(tmp_path, LINES[:1], "a.jsonl"), "error")
    b = read_dataset(write(tmp_path, LINES[:1], "b.jsonl"), "error")
    c = read_dataset(write(tmp_path, LINES[:1] + LINES[7:], "c.jsonl"), "error")
    assert a.sha256 == b.sha256 != c.sha256


def test_no_valid_example_and_missing_file(tmp_path):
    with pytest.raises(InputError, match="no valid example"):
        read_dataset(write(tmp_path, ["", "{oops"]), on_bad_line="skip")
    with pytest.raises(InputError, match="does not exist"):
        read_dataset(tmp_path / "nope.jsonl")


def test_watch_text_and_jsonl(tmp_path):
    text = read_watch(write(tmp_path, ["the cat says", "", "bob lives in"], "watch.txt"))
    assert [(w.prompt, w.target) for w in text.items] == [
        ("the cat says", None),
        ("bob lives in", None),
    ]
    lines = [json.dumps({"prompt": "the cat says", "target": " meow"}), '{"prompt": "a b"}']
    jsonl = read_watch(write(tmp_path, lines, "watch.jsonl"))
    assert [(w.prompt, w.target) for w in jsonl.items] == [("the cat says", " meow"), ("a b", None)]
    with pytest.raises(InputError, match="line 2:"):
        read_watch(write(tmp_path, [lines[0], '{"target": " x"}'], "bad.jsonl"))


def test_shard_plan_covers_every_record_once(tmp_path):
    lines = [json.dumps({"prompt": f"p{i}", "target": " t"}) for i in range(10)]
    records = read_dataset(write(tmp_path, lines)).records
    shards = plan(records, 4)
    assert [len(s.records) for s in shards] == [4, 4, 2]
    assert [r for s in shards for r in s.records] == list(records)
    assert [s.index for s in shards] == [0, 1, 2]


def test_parse_layers():
    assert parse_layers("0, 1,h.2") == (0, 1, "h.2")
    assert parse_layers(None) is None
    with pytest.raises(InputError):
        parse_layers(" , ")
