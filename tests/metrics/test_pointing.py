"""The pointing game (metrics/pointing.py) on masks whose maximum is known by hand."""

from __future__ import annotations

import torch

from maskscope.metrics import PointingGame, box_to_mask, center_box, max_point, pointing_hit


def test_pointing_tolerance_edges():
    mask = torch.zeros(60, 60)
    mask[30, 30] = 1.0
    assert max_point(mask) == (30, 30)
    assert pointing_hit(mask, [[0, 0, 15, 59]])  # 15 px to the left: on the tolerance edge
    assert not pointing_hit(mask, [[0, 0, 14, 59]])  # 16 px
    assert pointing_hit(mask, [[0, 0, 20, 20]])  # diagonal √200 ≈ 14.1 px
    assert not pointing_hit(mask, [[0, 0, 18, 18]])  # √288 ≈ 17 px: a square enlargement would hit
    assert pointing_hit(mask, [[0, 0, 18, 18], [25, 25, 35, 35]])  # any box
    assert not pointing_hit(mask, [[0, 0, 15, 59]], tolerance=0)


def test_pointing_ties_point_at_the_centre_of_the_tied_maxima():
    mask = box_to_mask(center_box(61, 61), (61, 61))
    assert max_point(mask) == (30, 30)
    game = PointingGame()
    game.update(mask[None, None].expand(2, 1, -1, -1), [[[25, 25, 35, 35]], [[0, 0, 5, 5]]])
    assert game.compute() == 0.5
