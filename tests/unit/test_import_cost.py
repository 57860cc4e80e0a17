"""`import probekit` and its lower layers stay cheap: no widgets, IPython or Captum."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

HEAVY = ("ipywidgets", "IPython", "anywidget", "captum", "altair", "torch", "transformers")


def _modules_after(statement: str) -> set[str]:
    code = f"import sys, json\n{statement}\nprint(json.dumps(sorted(sys.modules)))"
    out = subprocess.run(
        [sys.executable, "-c", code], check=True, capture_output=True, text=True
    ).stdout
    return set(json.loads(out.strip().splitlines()[-1]))


def test_import_probekit_loads_nothing_heavy():
    loaded = _modules_after("import probekit")
    assert not {m.split(".")[0] for m in loaded} & set(HEAVY)


@pytest.mark.parametrize(
    "module", ["probekit.errors", "probekit.core.loading", "probekit.core.inputs"]
)
def test_lower_layers_load_no_widget_or_captum(module):
    roots = {m.split(".")[0] for m in _modules_after(f"import {module}")}
    assert not roots & {"ipywidgets", "IPython", "anywidget", "captum", "altair"}


def test_public_names_resolve_lazily():
    import probekit as pk

    assert pk.Example("a", " b").target == " b"
    with pytest.raises(AttributeError):
        _ = pk.not_a_name
