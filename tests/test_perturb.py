import pytest
import torch

from maskscope.errors import ConfigError
from maskscope.perturb import PERTURBATIONS, Blur, FixedBlur, gaussian_blur, get_perturbation


@pytest.fixture
def images():
    return torch.rand(2, 3, 40, 48, generator=torch.Generator().manual_seed(0))


@pytest.mark.parametrize("name", sorted(PERTURBATIONS))
def test_identity_at_one_and_full_perturbation_at_zero(name, images):
    pert = get_perturbation(name)
    ones = torch.ones(2, 1, 40, 48)
    assert torch.allclose(pert(images, ones), images, atol=1e-6)
    full = pert(images, torch.zeros(2, 1, 40, 48))
    assert not torch.allclose(full, images, atol=1e-2)
    assert torch.allclose(full, pert.reference(images))


def test_blur_at_zero_is_sigma0_gaussian():
    images = torch.rand(2, 3, 224, 224, generator=torch.Generator().manual_seed(0))
    assert torch.allclose(
        Blur(sigma0=6)(images, torch.zeros(2, 1, 224, 224)), gaussian_blur(images, 6), atol=1e-6
    )


@pytest.mark.parametrize("cls", [Blur, FixedBlur])
def test_blur_sigma_is_given_at_224_px_and_scales_with_the_short_side(cls, images):
    """σ0 = 6 at 224 px is σ = 6 · 40/224 on a 40×48 image (the same blur relative to the image)."""
    full = cls(sigma0=6)(images, torch.zeros(2, 1, 40, 48))
    assert torch.allclose(full, gaussian_blur(images, 6 * 40 / 224), atol=1e-6)
    assert not torch.allclose(full, gaussian_blur(images, 6), atol=1e-3)


def test_blur_pyramid_blends_continuously(images):
    """Output changes by a small amount for a small change of m everywhere, also across levels."""
    blur = Blur(sigma0=10, levels=5)
    apply = blur.prepare(images)
    values = torch.linspace(0, 1, 401)
    outputs = torch.stack([apply(torch.full((2, 1, 40, 48), float(v))) for v in values])
    steps = (outputs[1:] - outputs[:-1]).abs().flatten(1).max(1).values
    assert steps.max() < 0.02  # no jumps at level boundaries (m = 0.25, 0.5, 0.75)
    # the blur grows monotonically as m decreases: distance to the original increases
    distance = (outputs - images).abs().flatten(1).mean(1)
    assert torch.all(distance[:-1] >= distance[1:] - 1e-6)


def test_blur_is_differentiable_in_the_mask(images):
    m = torch.full((2, 1, 40, 48), 0.4, requires_grad=True)
    Blur()(images, m).sum().backward()
    assert m.grad is not None and m.grad.abs().sum() > 0


def test_per_pixel_mask_only_changes_masked_pixels(images):
    m = torch.ones(2, 1, 40, 48)
    m[:, :, :10, :10] = 0
    out = get_perturbation("constant")(images, m)
    assert torch.equal(out[:, :, 10:, :], images[:, :, 10:, :])
    assert torch.allclose(out[:, :, :10, :10], images.mean(dim=(2, 3), keepdim=True).expand(-1, -1, 10, 10))


def test_unknown_perturbation_is_a_typed_error():
    with pytest.raises(ConfigError, match="unknown perturbation"):
        get_perturbation("sharpen")


def test_gaussian_blur_padding_keeps_or_drops_what_lies_outside():
    ones = torch.ones(1, 1, 32, 32)
    assert torch.allclose(gaussian_blur(ones, 3.0), ones)  # replicate: a constant stays constant
    zeros_outside = gaussian_blur(ones, 3.0, padding="zeros")
    assert float(zeros_outside[0, 0, 0, 0]) < 0.4 < 0.99 < float(zeros_outside[0, 0, 16, 16])
    with pytest.raises(ConfigError, match="padding"):
        gaussian_blur(ones, 3.0, padding="reflect")
