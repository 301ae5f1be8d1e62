"""The flowers data set: synthetic, generated here, the same on every machine.

Three species, four measurements per flower in millimetres (sepal length,
sepal width, petal length, petal width), whole numbers from 0 to 100. Each
species' measurements are drawn from a normal distribution around its own
means, with Python's own seeded generator (its output for a given seed is
part of the language's compatibility promise), so the model trained on it is
byte-identical on every build.
"""

import random

LABELS = ("setosa", "versicolor", "virginica")
FEATURES = ("sepal_length_mm", "sepal_width_mm", "petal_length_mm", "petal_width_mm")
MAX_LEVEL = 100
# Per species: mean and standard deviation of each feature, in millimetres.
SPECIES = {
    "setosa": ((50, 34, 15, 3), (4, 4, 2, 1)),
    "versicolor": ((59, 28, 43, 13), (6, 4, 6, 3)),
    "virginica": ((66, 30, 55, 20), (7, 4, 7, 4)),
}
SEED = 20261206
PER_SPECIES = 60
TEST_FRACTION = 0.25


def generate(seed=SEED, per_species=PER_SPECIES):
    """[(row, label index)] for every flower, in a fixed order."""
    rng = random.Random(seed)
    rows = []
    for index, label in enumerate(LABELS):
        means, spreads = SPECIES[label]
        for _ in range(per_species):
            row = [min(MAX_LEVEL, max(0, round(rng.gauss(mean, spread))))
                   for mean, spread in zip(means, spreads)]
            rows.append((row, index))
    rng.shuffle(rows)
    return rows


def split(rows, test_fraction=TEST_FRACTION):
    """(train, test): the last `test_fraction` of the shuffled rows are the test set."""
    cut = len(rows) - round(len(rows) * test_fraction)
    return rows[:cut], rows[cut:]
