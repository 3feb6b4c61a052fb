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


def test_padding_is_black_in_normalised_space() -> None:
    mean, std = (0.5, 0.25, 0.1), (0.2, 0.5, 0.25)
    x = torch.full((6, 3, 8, 8), 2.0)
    out = random_crop_flip(x, padding=3, flip=True, generator=torch.Generator().manual_seed(0),
                           fill=[-m / s for m, s in zip(mean, std, strict=True)])
    black = torch.tensor([-m / s for m, s in zip(mean, std, strict=True)]).view(3, 1, 1)
    padded = out != 2.0  # every pixel that is not the image is padding
    assert padded.any()
    for c in range(3):  # padding is black: after denormalising, 0 in [0, 1] pixel space
        values = out[:, c][padded[:, c]].unique()
        assert torch.allclose(values, black[c].flatten()), values
        assert torch.allclose(values * std[c] + mean[c], torch.zeros(1), atol=1e-6)
    zero = random_crop_flip(x, padding=3, flip=True, generator=torch.Generator().manual_seed(0))
    assert set(zero.unique().tolist()) == {0.0, 2.0}  # the default fill is 0 (pixel-space black)
