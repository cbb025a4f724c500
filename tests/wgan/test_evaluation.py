"""Evaluation: exact W1 on known cases, mode coverage, the evaluator on points and images, the classifiers."""

import math
from dataclasses import replace

import numpy as np
import pytest
import torch

import wgan.classifier as classifier
from tests.wgan.helpers import TINY_DIGITS, run_points, tiny_spec, tiny_trainer
from wgan import assemble
from wgan.classifier import LABELLED
from wgan.data.sources import digits_array, open_builtin
from wgan.data.toys import MIXTURES
from wgan.evaluation import EVAL_IMAGES, EVAL_POINTS, MODE_RADIUS_STD, Evaluator, exact_w1, mode_coverage

RNG = np.random.default_rng(0)


# --- exact W1 ---------------------------------------------------------------------------------


def test_w1_of_identical_sets_is_zero():
    a = RNG.normal(size=(300, 2))
    # (POT's euclidean cost expands |a|² + |b|² − 2ab, so a zero distance comes out near 1e-9.)
    assert exact_w1(a, a.copy()) == pytest.approx(0.0, abs=1e-7)
    assert exact_w1(a, a[::-1].copy()) == pytest.approx(0.0, abs=1e-7)  # order does not matter


def test_w1_of_a_shifted_set_is_the_length_of_the_shift():
    a = RNG.normal(size=(300, 2))
    v = np.array([0.3, -0.4])
    assert exact_w1(a, a + v) == pytest.approx(0.5, rel=1e-9)


def test_w1_between_sets_of_different_sizes_and_a_known_value():
    # Half the mass at 0, half at 2 against all of it at 1: every unit moves distance 1.
    a = np.array([[0.0, 0.0], [2.0, 0.0]])
    b = np.array([[1.0, 0.0]] * 3)
    assert exact_w1(a, b) == pytest.approx(1.0)
    assert exact_w1(a.astype(np.float32), b.astype(np.float32)) == pytest.approx(1.0)


def test_w1_is_symmetric_and_obeys_the_triangle_inequality():
    a, b, c = RNG.normal(size=(100, 2)), RNG.normal(size=(100, 2)) + 1, RNG.normal(size=(100, 2)) * 2
    assert exact_w1(a, b) == pytest.approx(exact_w1(b, a))
    assert exact_w1(a, c) <= exact_w1(a, b) + exact_w1(b, c) + 1e-9


# --- mode coverage ------------------------------------------------------------------------------


def _around(centres, per_mode, std):
    return np.concatenate([np.asarray(c) + std * RNG.normal(size=(per_mode, 2)) for c in centres])


def test_mode_coverage_counts_modes():
    mixture = MIXTURES["8gaussians"]
    centres = mixture.centers
    all_eight = mode_coverage(_around(centres, 100, mixture.std), mixture)
    assert (all_eight.modes_covered, all_eight.modes_total) == (8, 8)
    assert all_eight.high_quality > 0.99

    five = mode_coverage(_around(centres[:5], 160, mixture.std), mixture)
    assert five.modes_covered == 5

    # One sample near a mode covers it (VEEGAN, PacGAN), but does not cover it well (our stricter count);
    # far-off samples count for nothing.
    sparse = np.concatenate([_around(centres[:4], 200, mixture.std), _around(centres[4:5], 3, mixture.std)])
    far = np.full((200, 2), 10.0)
    coverage = mode_coverage(np.concatenate([sparse, far]), mixture)
    assert (coverage.modes_covered, coverage.modes_well_covered) == (5, 4)
    assert coverage.high_quality == pytest.approx(803 / 1003, abs=0.01)
    one = mode_coverage(np.concatenate([np.asarray(centres[6])[None], far]), mixture)
    assert (one.modes_covered, one.modes_well_covered) == (1, 0)


def test_all_samples_on_one_mode_cover_one():
    mixture = MIXTURES["25gaussians"]
    collapsed = mode_coverage(_around(mixture.centers[7:8], 500, mixture.std / 4), mixture)
    assert (collapsed.modes_covered, collapsed.modes_well_covered, collapsed.modes_total) == (1, 1, 25)


def test_mode_coverage_radius():
    mixture = MIXTURES["25gaussians"]
    centre = np.asarray(mixture.centers[0])
    inside = np.tile(centre + np.array([0.9 * MODE_RADIUS_STD * mixture.std, 0.0]), (100, 1))
    outside = np.tile(centre + np.array([1.1 * MODE_RADIUS_STD * mixture.std, 0.0]), (100, 1))
    assert mode_coverage(inside, mixture).modes_covered == 1
    assert mode_coverage(outside, mixture).modes_covered == 0


# --- the evaluator used at checkpoints ------------------------------------------------------------


def test_the_evaluator_on_real_samples_and_on_a_collapsed_generator():
    source = open_builtin("8gaussians", torch.device("cpu"))
    evaluator = Evaluator(source, n=500, seed=1)
    real = source.reference(500, 2).numpy()
    good = evaluator.measure(real)
    assert good["modes_covered"] == 8
    assert good["exact_w1"] < 0.15
    collapsed = evaluator.measure(np.tile(MIXTURES["8gaussians"].centers[0], (500, 1)))
    assert collapsed["modes_covered"] == 1
    assert collapsed["exact_w1"] > 1.0


def test_images_are_measured_in_data_space_against_a_fixed_real_sample():
    source = open_builtin("digits", torch.device("cpu"), image_size=16, channels=1)
    evaluator = Evaluator(source)
    assert (Evaluator(open_builtin("8gaussians", torch.device("cpu"))).n, evaluator.n) == (EVAL_POINTS, EVAL_IMAGES)
    assert evaluator.reference.shape == (EVAL_IMAGES, 1, 16, 16)
    np.testing.assert_array_equal(evaluator.reference, Evaluator(source).reference)  # the same at every call
    assert evaluator.measure(evaluator.reference)["exact_w1"] == pytest.approx(0.0, abs=1e-6)
    # Brightening every pixel by δ moves every image √(16·16)·δ in data space, and W1 by exactly that.
    shifted = evaluator.measure(evaluator.reference + 0.01)
    assert shifted["exact_w1"] == pytest.approx(16 * 0.01, rel=1e-6)
    assert set(shifted) == {"exact_w1"}  # no modes to count on images


def test_the_evaluator_as_a_trainer_hook_leaves_training_unchanged():
    plain = [(p.step, p.critic_loss, p.generator_loss) for p in run_points(tiny_trainer(steps=4, checkpoint_every=2))]
    trainer = tiny_trainer(steps=4, checkpoint_every=2)
    evaluator = Evaluator(trainer.data, n=200)
    points = run_points(trainer, evaluate=evaluator)
    assert [(p.step, p.critic_loss, p.generator_loss) for p in points] == plain
    assert {p.step for p in points if p.evaluation} == {2, 4}
    assert set(points[-1].evaluation) == {
        "exact_w1",
        "modes_covered",
        "modes_well_covered",
        "modes_total",
        "high_quality",
    }
    assert trainer.generator.training  # put back in training mode afterwards


def test_an_evaluation_that_raises_is_recorded_and_training_goes_on():
    plain = [(p.step, p.critic_loss) for p in run_points(tiny_trainer(steps=4, checkpoint_every=2))]

    def broken(trainer):
        raise ValueError("the reference went missing")

    checkpoints = []
    points = run_points(tiny_trainer(steps=4, checkpoint_every=2), evaluate=broken, on_checkpoint=checkpoints.append)
    assert [(p.step, p.critic_loss) for p in points] == plain
    assert [(p.step, p.evaluation, p.evaluation_error) for p in points if p.evaluation_error] == [
        (2, {}, "ValueError: the reference went missing"),
        (4, {}, "ValueError: the reference went missing"),
    ]
    assert [c.step for c in checkpoints] == [2, 4]


# --- the digit classifiers ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def digit_net(tmp_path_factory):
    # Fewer epochs than the default keep this test to a couple of seconds; the code path is the same.
    fast = replace(LABELLED["digits"], epochs=10)
    cache = tmp_path_factory.mktemp("cache")
    return classifier.load_classifier(fast, cache), fast, cache


def test_classifier_is_cached_as_safetensors_and_reloaded_without_training(digit_net, monkeypatch):
    net, labelled, cache = digit_net
    weights = cache / labelled.weights_name
    assert weights.read_bytes()[8:9] == b"{"  # a safetensors header, not a pickle

    def no_training(_labelled):
        raise AssertionError("retrained although the weights were cached")

    monkeypatch.setattr(classifier, "train_classifier", no_training)
    again = classifier.load_classifier(labelled, cache)
    x = classifier.to_native(digits_array()[:10], 8)
    with torch.no_grad():
        torch.testing.assert_close(again(x)[0], net(x)[0])


def test_a_damaged_cache_is_retrained(digit_net, tmp_path, monkeypatch):
    net, labelled, _ = digit_net
    (tmp_path / labelled.weights_name).write_bytes(b"garbage")
    monkeypatch.setattr(classifier, "train_classifier", lambda _labelled: (net, 1.0))
    assert classifier.load_classifier(labelled, tmp_path) is net
    assert (tmp_path / labelled.weights_name).read_bytes()[8:9] == b"{"


def _judge(digit_net, image_size, monkeypatch, n=500):
    net, labelled, cache = digit_net
    monkeypatch.setattr(classifier, "load_classifier", lambda _labelled, _directory=None: net)
    return classifier.Judge(labelled, image_size, 1, "resize", n, seed=1, directory=cache)


def test_real_digits_through_the_models_pipeline_score_all_classes_near_the_floor(digit_net, monkeypatch):
    judge = _judge(digit_net, 16, monkeypatch)
    real = open_builtin("digits", torch.device("cpu"), 16, 1).reference(500, 5).numpy()
    scores = judge.measure(real)
    assert scores["classes_covered"] == 10
    assert scores["class_kl"] < 0.02
    # Real images taken through the same 8 → 16 → 8 resizing are near the floor, and far below a
    # reference that skipped the resizing (which is what made real digits score ~400 before).
    assert scores["frechet"] < 3 * judge.floor + 1
    assert judge.floor == scores["frechet_real"]
    _, native = classifier.classify(judge.net, classifier.to_native(digits_array(), 8))
    _, resized = classifier.classify(judge.net, classifier.to_native(real, 8))
    assert classifier.frechet(resized, native) > 2 * scores["frechet"]


def test_one_repeated_digit_scores_one_class_and_the_largest_kl(digit_net, monkeypatch):
    judge = _judge(digit_net, 8, monkeypatch)
    scores = judge.measure(np.repeat(digits_array()[:1], 50, axis=0))
    assert scores["classes_covered"] == 1
    assert scores["class_kl"] == pytest.approx(math.log(10))
    assert scores["frechet"] > 10


def test_the_frechet_distance_of_a_set_with_itself_is_zero_and_of_two_gaussians_the_closed_form():
    rng = np.random.default_rng(3)
    a = rng.normal(size=(4000, 3))
    assert classifier.frechet(a, a) == pytest.approx(0.0, abs=1e-6)
    # N(μ1, σ1² I) against N(μ2, σ2² I) in d dimensions: ‖μ1 − μ2‖² + d (σ1 − σ2)².
    g1 = classifier.Gaussian(np.zeros(3), np.eye(3) * 4.0)
    g2 = classifier.Gaussian(np.array([1.0, 2.0, 2.0]), np.eye(3) * 1.0)
    assert classifier.frechet(g1, g2) == pytest.approx(9.0 + 3 * (2.0 - 1.0) ** 2)
    # A singular covariance product still gives a finite distance (the ε·I fallback, as pytorch-fid).
    flat = classifier.Gaussian(np.zeros(3), np.diag([1.0, 0.0, 0.0]))
    assert math.isfinite(classifier.frechet(flat, g2))


def test_classifier_reads_upscaled_rgb_and_uint8_digits(digit_net):
    net, _, _ = digit_net
    digits = digits_array()[:200]
    upscaled = torch.nn.functional.interpolate(torch.from_numpy(digits), size=(16, 16), mode="bilinear").numpy()
    rgb = np.repeat(upscaled, 3, axis=1)
    assert classifier.to_native(rgb, 8).shape == (200, 1, 8, 8)
    as_uint8 = np.round((digits + 1) * 127.5).astype(np.uint8)
    torch.testing.assert_close(classifier.to_native(as_uint8, 8), classifier.to_native(digits, 8), atol=0.01, rtol=0)
    with torch.no_grad():
        native = net(classifier.to_native(digits, 8))[0].argmax(1)
        resized = net(classifier.to_native(rgb, 8))[0].argmax(1)
    assert (native == resized).float().mean() > 0.9


def test_the_evaluator_judges_digits_jobs_with_the_classifier(digit_net, monkeypatch):
    net, _, _ = digit_net
    monkeypatch.setattr(classifier, "load_classifier", lambda _labelled, _directory=None: net)
    run = assemble(tiny_spec(TINY_DIGITS, evaluate=True), device=torch.device("cpu"), eval_examples=200)
    assert run.evaluator is not None and run.evaluator.judge is not None
    measures = run.evaluator(run.trainer)
    assert set(measures) == {"exact_w1", "classes_covered", "class_kl", "frechet", "frechet_real"}
    toy = assemble(tiny_spec(evaluate=True), device=torch.device("cpu"))
    assert toy.evaluator is not None and toy.evaluator.judge is None
