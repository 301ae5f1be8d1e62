"""Where the flowers model is: beside this file, in Bazel's runfiles and in the image's
sources alike (the image's production stage sets MODELSHIP_MODEL_PATH instead)."""

import os

MODEL_FILE = "flowers.model"


def model_path():
    """The artifact //models/flowers:model builds."""
    return os.path.join(os.path.dirname(os.path.abspath(__file__)), MODEL_FILE)
