import torch

from ssdd_cli.data.augment import random_crop_flip


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


def test_reflect_padding_introduces_no_new_values() -> None:
    x = torch.full((6, 3, 8, 8), 2.5)
    x[:, :, 0, :] = -1.0  # a distinct top row, so reflected crops differ from constant ones
    out = random_crop_flip(x, padding=3, flip=True, generator=torch.Generator().manual_seed(0),
                           padding_mode="reflect")
    assert out.shape == x.shape
    assert set(out.unique().tolist()) <= {2.5, -1.0}  # zero padding would add 0.0
    zero = random_crop_flip(x, padding=3, flip=True, generator=torch.Generator().manual_seed(0))
    assert 0.0 in zero.unique().tolist()
