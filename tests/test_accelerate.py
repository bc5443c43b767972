import pytest
import torch
from fixtures import QuadrantNet

from maskscope.accelerate import accelerate
from maskscope.blackbox import BlackBox
from maskscope.errors import ConfigError


def test_channels_last_gives_the_same_logits_and_leaves_the_model_alone():
    model = QuadrantNet().eval()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    blackbox = BlackBox(model, input_size=None)
    fast = accelerate(blackbox, channels_last=True)
    x = torch.rand(2, 3, 16, 16)
    assert torch.allclose(fast(x), blackbox(x), atol=1e-5)
    assert all(p.is_contiguous() for p in model.parameters())  # the user's weights keep their layout
    for k, v in model.state_dict().items():
        assert torch.equal(v, before[k])


def test_bf16_autocast_returns_float32_logits_close_to_float32():
    blackbox = BlackBox(QuadrantNet().eval(), input_size=None)
    fast = accelerate(blackbox, amp="bf16")
    x = torch.rand(2, 3, 16, 16, requires_grad=True)
    logits = fast(x)
    assert logits.dtype == torch.float32
    assert torch.allclose(logits, blackbox(x), rtol=0.05, atol=0.05)
    (grad,) = torch.autograd.grad(logits[:, 0].sum(), x)  # differentiable w.r.t. the input
    assert grad.dtype == torch.float32 and bool(grad.abs().sum() > 0)


def test_nothing_asked_is_the_same_blackbox_and_bad_requests_are_config_errors():
    blackbox = BlackBox(QuadrantNet().eval(), input_size=None)
    assert accelerate(blackbox) is blackbox
    with pytest.raises(ConfigError):
        accelerate(blackbox, amp="int4")
    with pytest.raises(ConfigError):
        accelerate(blackbox, amp="fp16")  # no fast fp16 on a CPU
