import torch

from ssdd_cli.train.augment import random_crop_flip


def test_crop_flip_shapes_and_content() -> None:
    x = torch.arange(2 * 3 * 6 * 6, dtype=torch.float32).reshape(2, 3, 6, 6)
    out = random_crop_flip(x, padding=2, flip=True, generator=torch.Generator().manual_seed(0))
    assert out.shape == x.shape
    same = random_crop_flip(x, padding=0, flip=False, generator=torch.Generator())
    assert torch.equal(same, x)
    # every output pixel is either padding (0) or a value of the same image and channel
    for b in range(2):
        for c in range(3):
            values = set(x[b, c].flatten().tolist()) | {0.0}
            assert set(out[b, c].flatten().tolist()) <= values
    a = random_crop_flip(x, padding=2, flip=True, generator=torch.Generator().manual_seed(5))
    b2 = random_crop_flip(x, padding=2, flip=True, generator=torch.Generator().manual_seed(5))
    assert torch.equal(a, b2)
