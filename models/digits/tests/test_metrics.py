"""Classification metrics on small cases worked out by hand."""

import pytest

from models.digits import metrics

Y_TRUE = [0, 0, 0, 1, 1, 2]
Y_PRED = [0, 0, 1, 1, 2, 2]


def test_accuracy_counts_exact_matches():
    assert metrics.accuracy(Y_TRUE, Y_PRED) == pytest.approx(4 / 6)
    assert metrics.accuracy([], []) == 0.0


def test_per_class_precision_recall_f1_support():
    got = metrics.per_class(Y_TRUE, Y_PRED, ["a", "b", "c"])
    assert got["a"] == {"precision": 1.0, "recall": 0.666667, "f1": 0.8, "support": 3}
    assert got["b"] == {"precision": 0.5, "recall": 0.5, "f1": 0.5, "support": 2}
    assert got["c"] == {"precision": 0.5, "recall": 1.0, "f1": 0.666667, "support": 1}


def test_macro_f1_is_the_unweighted_mean_of_class_f1():
    assert metrics.macro_f1(Y_TRUE, Y_PRED, 3) == pytest.approx((0.8 + 0.5 + 2 / 3) / 3)


def test_a_class_never_seen_nor_predicted_scores_zero():
    assert metrics.per_class([0], [0], ["a", "b"])["b"] == {
        "precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 0}
    assert metrics.macro_f1([0], [0], 2) == pytest.approx(0.5)
