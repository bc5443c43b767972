import pytest
import torch
import torch.nn.functional as F

from maskscope.masks import upsample_mask
from maskscope.perturb import Constant, FixedBlur, gaussian_blur

CASES = [((3, 1, 28, 28), (224, 224), 5.0), ((2, 1, 12, 20), (100, 160), 2.0), ((1, 1, 8, 8), (8, 8), 1.0),
         ((2, 1, 16, 16), (64, 64), 0.0)]


@pytest.mark.parametrize("shape, size, sigma", CASES)
def test_separable_upsampling_is_interpolate_then_blur(shape, size, sigma):
    params = torch.rand(shape, generator=torch.Generator().manual_seed(0), requires_grad=True)
    reference = gaussian_blur(F.interpolate(params, size=size, mode="bilinear", align_corners=False), sigma)
    fast = upsample_mask(params, size, sigma)
    assert torch.allclose(fast, reference.clamp(0, 1), atol=1e-6)
    weight = torch.rand(fast.shape, generator=torch.Generator().manual_seed(1))
    (g_fast,) = torch.autograd.grad((fast * weight).sum(), params)
    (g_ref,) = torch.autograd.grad((reference.clamp(0, 1) * weight).sum(), params)
    assert torch.allclose(g_fast, g_ref, atol=1e-5)


@pytest.mark.parametrize("pert", [FixedBlur(), Constant(), Constant(color=(0.0, 0.5, 1.0))])
def test_blend_is_the_convex_combination(pert):
    gen = torch.Generator().manual_seed(0)
    x, m = torch.rand(2, 3, 32, 32, generator=gen), torch.rand(2, 1, 32, 32, generator=gen)
    fill = pert.reference(x)  # m = 0: all fill
    assert torch.allclose(pert(x, m), x * m + fill * (1 - m), atol=1e-6)
    assert torch.allclose(pert(x, torch.ones_like(m)), x, atol=1e-6)
