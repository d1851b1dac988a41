"""A few training steps on CPU: the generator's and the evaluator's losses go down."""

from __future__ import annotations

import numpy as np

from training import world as train
from training.world import Part, Plan, hard_negative


def test_generator_and_evaluator_losses_decrease(tmp_path, monkeypatch):
    losses: dict[str, list[float]] = {}
    real_loop = train._loop

    def recording(part, parameters, step_fn, label):
        values = []

        def step(index):
            loss = step_fn(index)
            values.append(float(loss))
            return loss

        result = real_loop(part, parameters, step, label)
        losses[label] = values
        return result

    monkeypatch.setattr(train, "_loop", recording)
    plan = Plan(
        out=tmp_path,
        device="cpu",
        dataset=64,
        vae=Part(25, 8, 2e-3, 120),
        generator=Part(40, 8, 2e-3, 120),
        flawed=Part(2, 4, 1e-3, 60),
        evaluator=Part(40, 16, 2e-3, 120),
    )
    train.run_part(plan, "vae")
    train.run_part(plan, "generator")
    train.run_part(plan, "evaluator")
    for label in ("vae", "generator", "evaluator"):
        values = losses[label]
        assert np.mean(values[-8:]) < np.mean(values[:8]), (label, values)
    assert (tmp_path / "generator" / "model_index.json").is_file()
    assert (tmp_path / "evaluator" / "open_clip_config.json").is_file()


def test_hard_negatives_change_exactly_what_they_claim():
    rng = np.random.default_rng(0)
    caption = "a red circle on the left and a blue square at the top"
    negatives = {hard_negative(caption, rng) for _ in range(50)}
    assert caption not in negatives and len(negatives) > 10
    assert "a blue circle on the left and a red square at the top" in negatives  # colours swapped
