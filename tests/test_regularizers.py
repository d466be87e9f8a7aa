"""Discriminator regularizers: label flipping, instance noise, alternate training, DiffAugment, ADA, score gap."""

from __future__ import annotations

import io
import math

import pytest
import torch

from feraug.gan.losses import AdversarialLoss
from feraug.gan.regularizers import (
    AdaptiveAugment,
    ada_center,
    add_instance_noise,
    apply_augment,
    d_update_due,
    diff_augment,
    draw_params,
    expand_policy,
    flip_targets,
    flipped_discriminator_loss,
    instance_noise_sigma,
    score_gap,
)

T = torch.tensor
ALL_OPS = ("translation", "cutout", "brightness", "contrast")


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def five_sigma(p: float, n: int) -> float:
    """Five binomial standard deviations of a rate estimated from ``n`` trials."""
    return 5 * math.sqrt(p * (1 - p) / n)


# -- label flipping ------------------------------------------------------------------------------


def test_flip_rate_within_binomial_tolerance() -> None:
    n, p = 200_000, 0.01
    targets = flip_targets(n, 0.9, 0.0, p, gen(1))
    assert torch.equal(targets.unique(), T([0.0, 0.9]))
    assert abs((targets == 0.0).float().mean().item() - p) < five_sigma(p, n)


def test_flipped_lsgan_loss_measures_the_flip_rate() -> None:
    # reals scored exactly at r: unflipped ones cost 0, flipped ones (target 0) cost r², fakes at 0 cost 0
    n, p, r = 100_000, 0.01, 0.9
    loss = flipped_discriminator_loss("lsgan", torch.full((n,), r), torch.zeros(n), r, p, gen(2))
    rate = loss.item() / (0.5 * r * r)
    assert abs(rate - p) < five_sigma(p, n) + 1e-6


def test_a_sample_flips_with_its_whole_patch_map() -> None:
    # one sample, 4x4 patch map at r: the loss is 0 (kept) or ½r² (flipped), never in between
    r = 0.9
    real, fake = torch.full((1, 1, 4, 4), r), torch.zeros(1, 1, 4, 4)
    values = {round(flipped_discriminator_loss("lsgan", real, fake, r, 0.5, gen(s)).item(), 6) for s in range(40)}
    assert values == {0.0, round(0.5 * r * r, 6)}


@pytest.mark.parametrize("mode", ["lsgan", "bce"])
def test_p_zero_is_exactly_the_unflipped_loss_and_draws_nothing(mode: str) -> None:
    real, fake = torch.randn(4, 1, 5, 5, generator=gen(3)), torch.randn(4, 1, 5, 5, generator=gen(4))
    g = gen(5)
    state = g.get_state()
    loss = flipped_discriminator_loss(mode, real, fake, 0.9, 0.0, g)
    assert torch.equal(loss, AdversarialLoss(mode, 0.9).discriminator(real, fake))  # type: ignore[arg-type]
    assert torch.equal(g.get_state(), state)
    assert torch.equal(flipped_discriminator_loss(mode, real, fake, 0.9, 0.0, None), loss)


def test_hand_computed_losses_with_known_flips() -> None:
    real, fake, r = T([0.5, 0.2]), T([0.2, 0.4]), 0.9
    # p = 1 flips every real target to 0: ½[(0.5² + 0.2²)/2 + (0.2² + 0.4²)/2] = ½(0.145 + 0.1)
    assert flipped_discriminator_loss("lsgan", real, fake, r, 1.0, gen()).item() == pytest.approx(0.1225)
    # and p_fake = 1 flips every fake target to r: ½[0.145 + (0.7² + 0.5²)/2] = ½(0.145 + 0.37)
    both = flipped_discriminator_loss("lsgan", real, fake, r, 1.0, gen(), p_fake=1.0)
    assert both.item() == pytest.approx(0.2575)
    # bce, one real logit 1.5 flipped to target 0, one fake logit −0.5 at target 0: softplus each
    bce = flipped_discriminator_loss("bce", T([1.5]), T([-0.5]), r, 1.0, gen())
    softplus = lambda v: math.log1p(math.exp(v))  # noqa: E731
    assert bce.item() == pytest.approx(0.5 * (softplus(1.5) + softplus(-0.5)), rel=1e-6)


def test_flipping_refuses_critics_bad_settings_and_global_rng() -> None:
    real = fake = torch.zeros(2)
    with pytest.raises(ValueError, match="no meaning for a wgan-gp critic"):
        flipped_discriminator_loss("wgan-gp", real, fake, 1.0, 0.01, gen())
    with pytest.raises(ValueError, match="unknown gan mode 'hinge'"):
        flipped_discriminator_loss("hinge", real, fake, 1.0, 0.01, gen())
    with pytest.raises(ValueError, match=r"must lie in \[0, 1\]"):
        flipped_discriminator_loss("lsgan", real, fake, 1.0, 1.5, gen())
    with pytest.raises(ValueError, match=r"explicit torch\.Generator"):
        flipped_discriminator_loss("lsgan", real, fake, 1.0, 0.01, None)


# -- instance noise ------------------------------------------------------------------------------


def test_sigma_schedule_on_hand_values() -> None:
    assert instance_noise_sigma(0.1, 0.0) == pytest.approx(0.1)
    assert instance_noise_sigma(0.1, 0.5) == pytest.approx(0.05)
    assert instance_noise_sigma(0.1, 1.0) == 0.0
    assert instance_noise_sigma(0.1, 1.3) == 0.0  # a time-budget probe may train past the end
    assert instance_noise_sigma(0.05, 0.25, end=0.5) == pytest.approx(0.025)
    assert instance_noise_sigma(0.05, 0.5, end=0.5) == 0.0
    assert instance_noise_sigma(0.05, 0.8, end=0.5) == 0.0
    with pytest.raises(ValueError, match="end must lie"):
        instance_noise_sigma(0.1, 0.5, end=0.0)


def test_instance_noise_has_the_asked_std_and_none_at_zero() -> None:
    x = torch.rand(64, 1, 48, 48, generator=gen(6)) * 2 - 1
    n, sigma = x.numel(), 0.1
    noise = add_instance_noise(x, sigma, gen(7)) - x
    assert abs(noise.std().item() - sigma) < 5 * sigma / math.sqrt(2 * n)
    assert abs(noise.mean().item()) < 5 * sigma / math.sqrt(n)
    assert torch.equal(add_instance_noise(x, sigma, gen(7)), add_instance_noise(x, sigma, gen(7)))
    g = gen(8)
    state = g.get_state()
    assert torch.equal(add_instance_noise(x, 0.0, g), x) and torch.equal(g.get_state(), state)


# -- alternate training --------------------------------------------------------------------------


def test_d_update_count_over_a_schedule() -> None:
    steps_per_epoch, start_epoch, every = 10, 3, 5
    due = [d_update_due(s, s // steps_per_epoch, start_epoch, every) for s in range(100)]
    assert all(due[:30])  # epochs 0-2: every step
    assert [s for s in range(30, 100) if due[s]] == list(range(30, 100, 5))
    assert sum(due) == 30 + 14
    assert all(d_update_due(s, s // 10, 0, 1) for s in range(50))  # every = 1 is off
    with pytest.raises(ValueError, match="every must be >= 1"):
        d_update_due(0, 0, 0, 0)


# -- DiffAugment ---------------------------------------------------------------------------------


def faces(n: int = 8, seed: int = 9) -> torch.Tensor:
    return torch.rand(n, 1, 48, 48, generator=gen(seed)) * 2 - 1


def test_same_params_give_the_same_transform() -> None:
    x = faces()
    params = draw_params(8, ALL_OPS, gen(10), p=0.7)
    assert torch.equal(apply_augment(x, params), apply_augment(x, params))
    assert torch.equal(diff_augment(x, ALL_OPS, gen(10), p=0.7), apply_augment(x, params))
    # real and fake with one params: translation and cutout are linear, so aug(a) − aug(b) = aug(a − b)
    a, b = faces(seed=11), faces(seed=12)
    geo = draw_params(8, ["translation", "cutout"], gen(13))
    assert torch.allclose(apply_augment(a, geo) - apply_augment(b, geo), apply_augment(a - b, geo))


def test_deterministic_per_seed_and_stream_independent_of_p() -> None:
    x = faces()
    assert torch.equal(diff_augment(x, ALL_OPS, gen(14)), diff_augment(x, ALL_OPS, gen(14)))
    assert not torch.equal(diff_augment(x, ALL_OPS, gen(14)), diff_augment(x, ALL_OPS, gen(15)))
    g1, g2 = gen(16), gen(16)
    draw_params(8, ALL_OPS, g1, p=0.1)
    draw_params(8, ALL_OPS, g2, p=0.9)
    assert torch.equal(g1.get_state(), g2.get_state())


def test_gradients_flow_through_every_op() -> None:
    for op in ALL_OPS:
        x = faces().requires_grad_(True)
        (diff_augment(x, [op], gen(17)) * torch.randn(8, 1, 48, 48, generator=gen(18))).sum().backward()
        assert x.grad is not None and torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0, op


def test_p_zero_is_the_identity() -> None:
    x = faces()
    assert torch.equal(diff_augment(x, ALL_OPS, gen(19), p=0.0), x)


def test_per_sample_apply_rate() -> None:
    n, p = 4000, 0.3
    x = torch.zeros(n, 1, 4, 4)
    changed = (diff_augment(x, ["brightness"], gen(20), p=p) != 0).flatten(1).any(1).float().mean().item()
    assert abs(changed - p) < five_sigma(p, n)


def test_translation_moves_a_bright_pixel_by_integer_pixels() -> None:
    n = 512
    x = torch.zeros(n, 1, 48, 48)
    x[:, 0, 24, 24] = 1.0
    out = diff_augment(x, ["translation"], gen(21))
    assert torch.equal(out.flatten(1).sum(1), torch.ones(n))  # one pixel, moved whole, nothing else
    assert set(out.unique().tolist()) == {0.0, 1.0}
    where = out.flatten(1).argmax(1)
    dy, dx = where // 48 - 24, where % 48 - 24
    assert set(dy.tolist()) == set(range(-6, 7)) and set(dx.tolist()) == set(range(-6, 7))  # ±48/8, all reached


def test_translation_pads_with_zero() -> None:
    out = diff_augment(torch.ones(64, 1, 48, 48), ["translation"], gen(22))
    for img in out[:, 0]:
        rows, cols = img.bool().any(1), img.bool().any(0)
        # what stays is a full rectangle of ones touching two opposite borders; the rest is 0
        assert img.sum().item() == rows.sum().item() * cols.sum().item()
        assert rows.sum() >= 42 and cols.sum() >= 42 and (rows[0] or rows[-1]) and (cols[0] or cols[-1])


def test_cutout_zeroes_a_half_side_square() -> None:
    out = diff_augment(torch.ones(256, 1, 48, 48), ["cutout"], gen(23))
    assert set(out.unique().tolist()) == {0.0, 1.0}
    whole = 0
    for img in out[:, 0]:
        hole = img == 0
        rows, cols = hole.any(1).nonzero().flatten(), hole.any(0).nonzero().flatten()
        h, w = len(rows), len(cols)
        assert hole.sum().item() == h * w and rows[-1] - rows[0] == h - 1 and cols[-1] - cols[0] == w - 1
        assert 1 <= h <= 24 and 1 <= w <= 24
        if h < 24:  # clipped squares touch the border
            assert rows[0] == 0 or rows[-1] == 47
        if w < 24:
            assert cols[0] == 0 or cols[-1] == 47
        whole += h == w == 24
    assert whole > 0


def test_brightness_and_contrast_ranges() -> None:
    x = faces(64)
    shift = diff_augment(x, ["brightness"], gen(24)) - x
    per = shift.flatten(1)
    assert torch.allclose(per, per[:, :1].expand_as(per), atol=1e-6) and per.abs().max() <= 0.5
    y = diff_augment(x, ["contrast"], gen(25))
    mean_x, mean_y = x.mean((1, 2, 3), keepdim=True), y.mean((1, 2, 3), keepdim=True)
    assert torch.allclose(mean_x, mean_y, atol=1e-5)
    factor = ((y - mean_y).flatten(1).norm(dim=1) / (x - mean_x).flatten(1).norm(dim=1)).tolist()
    assert all(0.5 - 1e-4 <= f <= 1.5 + 1e-4 for f in factor) and max(factor) - min(factor) > 0.5


def test_output_stays_finite() -> None:
    for x in (faces(), torch.full((8, 1, 48, 48), -1.0), torch.ones(8, 1, 48, 48)):
        assert torch.isfinite(diff_augment(x, "color,translation,cutout", gen(26))).all()


def test_policies_and_bad_input() -> None:
    assert expand_policy("color,translation, cutout") == ("brightness", "contrast", "translation", "cutout")
    assert expand_policy([]) == ()
    with pytest.raises(ValueError, match=r"unknown DiffAugment op\(s\) 'rotate': valid ops are translation, cutout"):
        diff_augment(faces(), ["translation", "rotate"], gen())
    with pytest.raises(ValueError, match="drawn for 3 images, got a batch of 8"):
        apply_augment(faces(), draw_params(3, ALL_OPS, gen()))


# -- ADA -----------------------------------------------------------------------------------------


def test_ada_rises_on_an_overfit_d_and_falls_back_clamped() -> None:
    ada = AdaptiveAugment(target=0.6, interval=2, speed_images=80)  # 10 images per interval → ±0.125
    sure = torch.full((5, 1, 2, 2), 0.3)
    sure[:, :, 0, 0] = -0.5  # patch maps are averaged per sample first: mean 0.1 > 0 → +1
    assert ada.observe(sure) == 0.0 and ada.last_rt is None  # mid-interval: no update yet
    assert ada.observe(sure) == 0.125 and ada.last_rt == 1.0
    ada.observe(sure)
    assert ada.observe(sure) == 0.25
    fooled = -torch.ones(5)
    ps = [ada.observe(fooled) for _ in range(6)]
    assert ps == [0.25, 0.125, 0.125, 0.0, 0.0, 0.0] and ada.last_rt == -1.0


def test_ada_clamps_at_one_and_respects_the_target() -> None:
    ada = AdaptiveAugment(target=0.6, interval=1, speed_images=4)
    assert [ada.observe(torch.ones(3)) for _ in range(3)] == [0.75, 1.0, 1.0]
    # r_t = (3 − 1)/4 = 0.5 < 0.6: D is not overfitting enough, p comes down
    assert ada.observe(T([1.0, 1.0, 1.0, -1.0])) == 0.0 and ada.last_rt == 0.5


def test_ada_centres() -> None:
    assert ada_center("lsgan", 0.9) == pytest.approx(0.45)
    assert ada_center("bce") == 0.0
    assert ada_center("bce", 0.9) == pytest.approx(math.log(0.45 / 0.55))
    assert ada_center("wgan-gp", fake_scores=T([1.0, 3.0])).item() == 2.0
    with pytest.raises(ValueError, match="pass fake_scores"):
        ada_center("wgan-gp")
    ada = AdaptiveAugment(interval=1, speed_images=4)
    # an undecided LSGAN D scores ≈ r/2 > 0: against 0 it would look overfit, against r/2 it does not
    assert ada.observe(T([0.5, 0.4, 0.5, 0.4]), center=0.45) == 0.0 and ada.last_rt == 0.0
    assert ada.observe(T([0.5, 0.4, 0.5, 0.4])) == 1.0


def test_ada_state_round_trip_resumes_exactly() -> None:
    scores = [torch.randn(3, 1, 2, 2, generator=gen(30)) + 0.4 * math.sin(i / 3) for i in range(40)]
    straight, first = AdaptiveAugment(interval=4, speed_images=50), AdaptiveAugment(interval=4, speed_images=50)
    expected = [straight.observe(s) for s in scores]
    got = [first.observe(s) for s in scores[:10]]  # stop mid-interval
    buf = io.BytesIO()
    torch.save(first.state_dict(), buf)
    buf.seek(0)
    state = torch.load(buf, weights_only=True)
    assert all(v is None or type(v) in (int, float) for v in state.values())
    resumed = AdaptiveAugment(interval=4, speed_images=50)
    resumed.load_state_dict(state)
    got += [resumed.observe(s) for s in scores[10:]]
    assert got == expected and resumed.last_rt == straight.last_rt
    assert len(set(expected)) > 2  # p did move


# -- logging -------------------------------------------------------------------------------------


def test_score_gap() -> None:
    real = T([1.0, 3.0], requires_grad=True)
    gap = score_gap(real, T([[0.0, 1.0], [2.0, 1.0]]))
    assert gap.item() == 1.0 and not gap.requires_grad
