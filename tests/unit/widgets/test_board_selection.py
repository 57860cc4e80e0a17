"""Linked selection across the board's clickable charts (timeline and heatmap)."""

from __future__ import annotations

import pytest

import probekit as pk
from probekit.widgets.board import ProbeBoard


@pytest.fixture
def board(tiny_gpt2):
    model, tok = tiny_gpt2
    probe = pk.Probe(model, tok, optimizer="sgd", lr=0.1, watch=[pk.Example("the cat says")])
    b = ProbeBoard(probe, prompt="the dog says", target=" woof")
    yield b
    b.wait(30)
    b.close()


def shown(board: ProbeBoard) -> set[int]:
    return {row["step"] for row in board.charts["watch"].rows}


def test_a_step_clicked_again_after_another_chart_selected_is_shown_again(board):
    for _ in range(3):
        board.actions.probe.click()
        assert board.wait(60)
    timeline, heatmap = board.charts["timeline"], board.charts["layers"]
    assert timeline.selected == heatmap.selected == 2, "the clickable charts follow what is shown"
    timeline.selected = 0  # what a click on step 0 in the timeline does
    assert board.panels.shown == 0 and shown(board) == {0}
    heatmap.selected = 1  # then a click on a cell of step 1 in the heatmap
    assert board.panels.shown == 1 and shown(board) == {1}
    assert timeline.selected == 1
    timeline.selected = 0  # step 0 in the timeline again: a change, so it is shown again
    assert board.panels.shown == 0 and shown(board) == {0}


def test_reset_clears_the_selection(board):
    board.actions.probe.click()
    assert board.wait(60)
    board.actions.reset.click()
    assert board.wait(60)
    assert board.charts["timeline"].selected is None and board.panels.shown is None
