"""dstl/train/losses.py: numerically stable losses on logits, overlap terms, class weights."""

import pytest
import torch
import torch.nn.functional as F

from dstl.train.losses import SegmentationLoss, bce_per_class, soft_dice_per_class, soft_jaccard_per_class


def _target(seed=0, shape=(2, 10, 16, 16)):
    g = torch.Generator().manual_seed(seed)
    return (torch.rand(shape, generator=g) < 0.3).float()


@pytest.mark.parametrize("kind", ["bce", "bce_dice", "bce_jaccard"])
def test_extreme_logits_give_finite_loss_and_gradients(kind):
    y = _target()
    logits = (y * 2 - 1) * -1e4  # confidently wrong everywhere
    logits.requires_grad_(True)
    loss = SegmentationLoss(kind)(logits, y)
    loss.backward()
    assert torch.isfinite(loss)
    assert torch.isfinite(logits.grad).all()
    assert loss.item() > 100  # BCE of a 1e4 logit on the wrong side is 1e4


def test_bce_term_matches_torch_reference():
    y = _target()
    logits = torch.randn(y.shape, generator=torch.Generator().manual_seed(1))
    expected = F.binary_cross_entropy(torch.sigmoid(logits), y, reduction="none").mean(dim=(0, 2, 3))
    assert torch.allclose(bce_per_class(logits, y), expected, atol=1e-5)
    assert SegmentationLoss("bce")(logits, y).item() == pytest.approx(expected.mean().item(), rel=1e-5)


def test_perfect_prediction_scores_one_and_absent_class_is_not_penalised():
    y = _target()
    y[:, 3] = 0  # class 4 absent from the batch
    logits = (y * 2 - 1) * 50
    assert torch.allclose(soft_jaccard_per_class(logits, y), torch.ones(10), atol=1e-4)
    assert torch.allclose(soft_dice_per_class(logits, y), torch.ones(10), atol=1e-4)
    assert SegmentationLoss("bce_jaccard")(logits, y).item() < 1e-3


def test_soft_jaccard_of_a_known_case():
    # One class, 4 pixels: probabilities 1,1,0,0 vs target 1,0,1,0 -> I=1, P=2, T=2 -> (1+1)/(3+1)
    logits = torch.tensor([50.0, 50.0, -50.0, -50.0]).view(1, 1, 2, 2)
    target = torch.tensor([1.0, 0.0, 1.0, 0.0]).view(1, 1, 2, 2)
    assert soft_jaccard_per_class(logits, target).item() == pytest.approx(2 / 4, abs=1e-6)
    assert soft_dice_per_class(logits, target).item() == pytest.approx((2 + 1) / (4 + 1), abs=1e-6)


def test_class_weights_select_which_errors_count():
    y = _target()
    logits = (y * 2 - 1) * 20
    logits[:, 0] = -logits[:, 0]  # class 1 completely wrong, the others right
    only_class1 = [1.0] + [0.0] * 9
    all_but_class1 = [0.0] + [1.0] * 9
    bad = SegmentationLoss("bce_jaccard", class_weights=only_class1)(logits, y).item()
    good = SegmentationLoss("bce_jaccard", class_weights=all_but_class1)(logits, y).item()
    assert bad > 10 and good < 1e-3


def test_loss_is_computed_in_float32_under_bf16_logits():
    y = _target()
    logits = torch.randn(y.shape).to(torch.bfloat16).requires_grad_(True)
    loss = SegmentationLoss("bce_dice")(logits, y)
    assert loss.dtype == torch.float32
    loss.backward()
    assert logits.grad.dtype == torch.bfloat16


def test_shape_mismatch_and_unknown_kind_are_errors():
    with pytest.raises(ValueError, match="differ"):
        SegmentationLoss()(torch.zeros(1, 10, 4, 4), torch.zeros(1, 10, 4, 5))
    with pytest.raises(ValueError, match="loss must be one of"):
        SegmentationLoss("focal")
