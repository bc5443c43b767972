"""The optimisation core on objectives whose minimiser is known by hand."""

from __future__ import annotations

import math

import pytest
import torch

from maskscope.errors import ConfigError
from maskscope.methods.early_stop import EarlyStop
from maskscope.methods.optimise import Active, Objective, Schedule, optimise_masks

GOAL = torch.tensor([0.2, 0.7, 1.6]).view(3, 1, 1, 1)  # the last lies outside [0, 1]


def _prepare(rows: torch.Tensor):
    return lambda masks: masks  # no perturbation: the data term reads the mask itself


def quadratic(goal: torch.Tensor = GOAL) -> Objective:
    """loss = (p − goal)² per image: minimised at goal, or at 1 when goal is above the box."""

    def data(shown: torch.Tensor, _t: int, active: Active) -> torch.Tensor:
        return (shown - goal[active.rows]).pow(2).flatten(1).sum(1)

    return Objective(lambda p: p, data, lambda s, p, active: torch.zeros(len(active.rows)))


def test_projected_descent_finds_the_minimiser_in_the_box():
    start = torch.full((3, 1, 1, 1), 0.5)
    params, history, used = optimise_masks(start, _prepare, quadratic(), Schedule(200))
    assert torch.allclose(params.flatten(), torch.tensor([0.2, 0.7, 1.0]), atol=1e-3)
    assert history.shape == (200, 3) and used.tolist() == [200] * 3
    assert float(params.min()) >= 0 and float(params.max()) <= 1


def test_keep_best_returns_the_lowest_loss_seen_and_last_the_final_iterate():
    """A loss that grows by 1 each iteration whatever the mask: the first iterate is the best one."""
    base = quadratic()

    def rising(shown: torch.Tensor, t: int, active: Active) -> torch.Tensor:
        return base.data(shown, t, active) + t

    objective = Objective(base.to_mask, rising, base.regulariser)
    start = torch.full((3, 1, 1, 1), 0.5)
    best, history, _ = optimise_masks(start, _prepare, objective, Schedule(50))
    assert torch.equal(best, start) and torch.equal(history.min(0).values, history[0])
    last, _, _ = optimise_masks(start, _prepare, objective, Schedule(50, keep="last"))
    assert torch.allclose(last.flatten(), torch.tensor([0.2, 0.7, 1.0]), atol=0.05)


def test_the_weight_schedule_sees_every_iteration_and_scales_the_regulariser():
    seen: list[int] = []

    def weight(t: int) -> float:
        seen.append(t)
        return 10.0 * t

    def nothing(s: torch.Tensor, t: int, a: Active) -> torch.Tensor:
        return torch.zeros(len(a.rows))

    area = Objective(lambda p: p, nothing, lambda s, p, a: s.flatten(1).sum(1), weight=weight)
    params, history, _ = optimise_masks(torch.full((2, 1, 2, 2), 0.5), _prepare, area, Schedule(5, lr=0.01))
    assert seen == [0, 1, 2, 3, 4]
    assert history[0].tolist() == [0.0, 0.0]  # weight 0: no gradient, the mask stays at 0.5
    assert history[1].tolist() == pytest.approx([10 * 4 * 0.5] * 2)
    assert all(20 * 4 * 0.49 < v < 20 * 4 * 0.5 for v in history[2].tolist())  # one Adam step of lr 0.01


def test_a_converged_image_leaves_the_batch_and_the_others_do_not_notice():
    rule = EarlyStop(window=5, tolerance=1e-3, min_iterations=10)
    start = torch.tensor([0.2, 0.0, 0.9]).view(3, 1, 1, 1)  # image 0 starts at its minimiser
    params, history, used = optimise_masks(start, _prepare, quadratic(), Schedule(100, early_stop=rule))
    assert used[0] == 10 and used[1] > used[0]
    assert torch.isnan(history[10:, 0]).all() and not torch.isnan(history[: int(used[1]), 1]).any()
    alone, alone_history, alone_used = optimise_masks(
        start[1:2], _prepare, quadratic(GOAL[1:2]), Schedule(100, early_stop=rule)
    )
    assert torch.equal(alone[0], params[1]) and alone_used[0] == used[1]
    assert torch.equal(alone_history[: int(used[1]), 0], history[: int(used[1]), 1])


def test_jitter_is_drawn_from_the_seed_alone():
    shifts: list[torch.Tensor] = []

    def data(shown: torch.Tensor, _t: int, active: Active) -> torch.Tensor:
        shifts.append(shown.detach().clone())
        return shown.flatten(1).sum(1)

    objective = Objective(lambda p: p, data, lambda s, p, a: torch.zeros(len(a.rows)), jitter=3)
    start = torch.rand(1, 1, 8, 8, generator=torch.Generator().manual_seed(0))
    for _ in range(2):
        optimise_masks(start, _prepare, objective, Schedule(4), seed=7)
    assert all(torch.equal(a, b) for a, b in zip(shifts[:4], shifts[4:]))
    assert any(not torch.equal(shown, start) for shown in shifts[:4])  # the mask was shifted


def test_progress_callback_counts_every_step():
    calls: list[tuple[int, int]] = []
    start = torch.full((3, 1, 1, 1), 0.5)
    optimise_masks(start, _prepare, quadratic(), Schedule(3), progress=lambda *a: calls.append(a))
    assert calls == [(1, 3), (2, 3), (3, 3)]


@pytest.mark.parametrize("bad", [dict(iterations=0), dict(iterations=2.5), dict(iterations=5, keep="first")])
def test_a_bad_schedule_is_a_config_error(bad):
    with pytest.raises(ConfigError):
        Schedule(**bad)


def test_log_odds_score_is_the_log_odds_of_the_summed_probability():
    """log p − log(1 − p) of the target's (or targets') summed softmax probability, and finite where
    p rounds to 1 in float32 (where log(p / (1 − p)) computed from p is not)."""
    from maskscope.objectives import class_score

    logits = torch.tensor([[2.0, 0.5, -1.0, 0.0], [0.0, 0.0, 0.0, 0.0], [40.0, 0.0, 0.0, 0.0]])
    for targets in (torch.tensor([[0], [1], [0]]), torch.tensor([[0, 2], [1, 3], [0, 1]])):
        p = logits.double().softmax(1).gather(1, targets).sum(1)
        expected = (p / (1 - p)).log()
        got = class_score(logits, targets, "log-odds")
        assert torch.allclose(got.double()[:2], expected[:2], atol=1e-5)
    assert abs(float(class_score(logits[2:], torch.tensor([[0]]), "log-odds")) - (40 - math.log(3))) < 1e-4
