import torch

from ssdd_cli.train.knn import knn_predict


def test_knn_recovers_clusters_and_majority() -> None:
    g = torch.Generator().manual_seed(0)
    centres = torch.eye(4) * 5
    labels = torch.arange(4).repeat_interleave(10)
    train = centres[labels] + 0.1 * torch.randn(40, 4, generator=g)
    query = centres + 0.1 * torch.randn(4, 4, generator=g)
    for temperature in (0.07, None):
        pred = knn_predict(train, labels, query, num_classes=4, k=5, temperature=temperature)
        assert pred.dtype == torch.long
        assert pred.tolist() == [0, 1, 2, 3]


def test_knn_k_capped_and_ties_to_lowest() -> None:
    train = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    pred = knn_predict(train, torch.tensor([1, 0]), torch.tensor([[1.0, 1.0]]), num_classes=2,
                       k=50, temperature=None)
    assert pred.tolist() == [0]
