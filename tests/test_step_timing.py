"""The Train form's time for a recipe counted in epochs: a few real training steps timed on this machine, in a
child process (the dtype policy it sets must not leak into the app), times the steps the recipe will take."""

from __future__ import annotations

import pytest

from fer_core.model.kerasenv import keras
from fer_core.train import step_timing
from fer_core.train.step_timing import Recipe

pytestmark = pytest.mark.slow


def test_the_estimate_counts_every_epochs_steps_and_the_runs_fixed_cost():
    one_epoch = step_timing.estimated_seconds(1, 320, 32, 0.1)
    assert step_timing.estimated_seconds(40, 320, 32, 0.1) - step_timing.RUN_OVERHEAD_SECONDS == pytest.approx(
        40 * (one_epoch - step_timing.RUN_OVERHEAD_SECONDS))
    assert step_timing.estimated_seconds(1, 321, 32, 0.1) > one_epoch          # a last, partial batch is a step


def test_a_step_is_timed_in_a_child_process_once_and_in_the_precision_asked():
    policy = keras.mixed_precision.global_policy().name
    recipe = Recipe(backbone="custom_cnn", batch_size=16, precision="mixed_bfloat16")
    step_timing.start_timing(recipe)
    seconds = step_timing.seconds_per_step(recipe)
    assert seconds is not None and 0 < seconds < 30
    assert step_timing.seconds_per_step(recipe) == seconds                  # kept: not timed again
    assert keras.mixed_precision.global_policy().name == policy             # the app's own policy is untouched


def test_a_recipe_that_cannot_be_timed_gives_no_figure_rather_than_an_error():
    broken = Recipe(backbone="no-such-backbone")
    assert step_timing.seconds_per_step(broken, wait=0) is None            # not started: no figure, no wait
    step_timing.start_timing(broken)
    assert step_timing.seconds_per_step(broken) is None
    step_timing.start_timing(broken)                                        # not again at once
    assert broken not in step_timing._timings
