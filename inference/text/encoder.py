"""The public API of the sentence encoder: text or token ids in, unit vectors out.

    from inference.text.encoder import SentenceEncoder

    encoder = SentenceEncoder.load("minilm.model", expected_version=None)
    vectors = encoder.embed(["A sentence.", "Another one."])   # list of array('f')
    vectors = encoder.embed_ids([[101, 1037, 6251, 1012, 102]])
    encoder.version, encoder.metadata, encoder.dimension

Each vector is `dimension` float32 values of L2 norm 1 (BERT, mean pooling
over the sequence's tokens, L2 normalisation; what sentence-transformers
computes). A row's vector never depends on the other rows of its batch and is
bit-identical from run to run on one machine: sequences are packed back to
back without padding, and the kernels fix the order of every sum
(`_encoder_kernels.h`). Big batches are split between threads by sequence; a
few sequences (one sentence) are run by a team of threads sharing each step.

No numpy here: this runs in the production image.
"""

import array
import copy
import os

from inference import artifact, errors
from inference.text import _encoder, spec

# Token counts of a batch below which one thread is faster than two (starting a
# thread and the barriers between steps cost tens of microseconds).
_THREADS_MIN_TOKENS = 8
# Tokens per kernel call: the activations take about 17 KB per token, so a
# batch is embedded in chunks of whole sequences of at most this many tokens
# (about 140 MB), whatever its size. Rows never interact: chunks change no bit.
_MAX_TOKENS_PER_CALL = 8192
_ZERO_F32 = array.array("f", [0.0])


def default_threads():
    """Threads a batch may use: the CPUs this process may run on (at most 8)."""
    try:
        count = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        count = os.cpu_count() or 1
    return max(1, min(8, count))


class SentenceEncoder:
    """A loaded, verified sentence encoder. Safe to share between threads."""

    def __init__(self, loaded, checked, source, threads=None):
        """Use `SentenceEncoder.load`; the constructor's arguments are internal."""
        self._version = loaded.version
        self._source = source
        self._dims = checked.dims
        self._max_length = checked.tokenizer["max_length"]
        self._kernel = _encoder.Encoder(checked.dims, checked.weights, checked.vectors,
                                        _encoder.ACTIVATIONS[checked.activations])
        self._threads = default_threads() if threads is None else max(1, int(threads))
        self._artifact = loaded
        self._tokenizer = None
        header = loaded.header
        self._metadata = {
            "version": loaded.version,
            "schema": {"name": header["schema"], "version": header["schema_version"]},
            "model": header["model"],
            "architecture": header["architecture"],
            "tokenizer": header["tokenizer"],
            "pooling": header["pooling"],
            "normalize": header["normalize"],
            "output": header["output"],
            "precision": header["precision"],
            "metrics": header["metrics"],
            "formats": {"artifact_format_version": artifact.FORMAT_VERSION},
        }

    @classmethod
    def load(cls, path, expected_version=None, threads=None):
        """Loads and verifies the artifact at `path`.

        Raises an `errors.ArtifactError` subclass naming the problem (unreadable,
        truncated, corrupt, another schema). With `expected_version` (a sha256
        hex string), refuses any other model with `errors.VersionMismatchError`.
        `threads`: most threads one batch uses (default: the CPUs available).
        """
        loaded = artifact.read(path)
        if expected_version is not None and loaded.version != expected_version:
            raise errors.VersionMismatchError(
                f"{path} is model version {loaded.version}, but version {expected_version} "
                "was expected. Deploy the expected artifact or update the pinned version.")
        checked = spec.sentence_encoder_spec(loaded, source=str(path))
        return cls(loaded, checked, str(path), threads=threads)

    @property
    def version(self):
        """The model version id: sha256 (hex) of the artifact file."""
        return self._version

    @property
    def dimension(self):
        """Floats per embedding."""
        return self._dims["hidden"]

    @property
    def max_length(self):
        """Most tokens of one sequence the tokenizer keeps ([CLS] and [SEP] included)."""
        return self._max_length

    @property
    def metadata(self):
        """A copy of the model's description: header sections, version, formats."""
        return copy.deepcopy(self._metadata)

    @property
    def tokenizer(self):
        """The model's WordPiece tokenizer (built from the artifact on first use)."""
        if self._tokenizer is None:
            from inference.text import tokenizer  # pylint: disable=import-outside-toplevel
            self._tokenizer = tokenizer.WordPieceTokenizer.from_artifact(self._artifact)
        return self._tokenizer

    def embed(self, texts):
        """Unit vectors of a list of strings: a list of array('f'), one per text."""
        if isinstance(texts, str) or not isinstance(texts, (list, tuple)):
            raise errors.InputError(
                f"texts has type {type(texts).__name__}; pass a list of strings (a single "
                "text is a list of one).")
        for i, text in enumerate(texts):
            if not isinstance(text, str):
                raise errors.InputError(
                    f"texts[{i}] has type {type(text).__name__}; every text must be a str.")
        return self.embed_ids(self.tokenizer.encode_batch(texts))

    def embed_ids(self, sequences):
        """Unit vectors of token id sequences: a list of array('f'), one per sequence.

        Each sequence is a list, tuple or array of 1 to max_positions ints below
        vocab_size, usually [CLS] ... [SEP] as the tokenizer makes them.
        """
        flat = self.embed_ids_flat(sequences)
        width = self.dimension
        return [flat[i:i + width] for i in range(0, len(flat), width)]

    def embed_ids_flat(self, sequences):
        """As `embed_ids`, but one array('f') of len(sequences) * dimension values."""
        ids, offsets = self._pack(sequences)
        n_seq, width = len(offsets) - 1, self.dimension
        out = _ZERO_F32 * (n_seq * width)
        view, first = memoryview(out), 0
        while first < n_seq:
            last = first + 1
            while last < n_seq and offsets[last + 1] - offsets[first] <= _MAX_TOKENS_PER_CALL:
                last += 1
            start = offsets[first]
            chunk_offsets = array.array("l", (o - start for o in offsets[first:last + 1]))
            chunk_ids = ids[start:offsets[last]]
            threads = self._threads if len(chunk_ids) >= _THREADS_MIN_TOKENS else 1
            try:
                self._kernel.forward(chunk_ids, chunk_offsets, view[first * width:last * width],
                                     threads)
            except ValueError:
                raise self._explain(sequences) from None
            first = last
        return out

    def _pack(self, sequences):
        """Token ids back to back in array('i'), and sequence offsets in array('l')."""
        if isinstance(sequences, (str, bytes)) or not hasattr(sequences, "__len__"):
            raise errors.InputError(
                f"sequences has type {type(sequences).__name__}; pass a list of token id "
                "lists.")
        ids, offsets = array.array("i"), array.array("l", [0])
        for i, seq in enumerate(sequences):
            if isinstance(seq, (str, bytes)) or not hasattr(seq, "__len__"):
                raise errors.InputError(
                    f"sequences[{i}] has type {type(seq).__name__}; each sequence is a list "
                    "of token ids.")
            try:
                ids.extend(seq)
            except (TypeError, OverflowError):
                raise errors.InputError(
                    f"sequences[{i}] holds a value that is not a token id (an int below "
                    f"{self._dims['vocab_size']}).") from None
            offsets.append(len(ids))
        return ids, offsets

    def _explain(self, sequences):
        """The InputError for a batch the kernel refused."""
        vocab, longest = self._dims["vocab_size"], self._dims["max_positions"]
        for i, seq in enumerate(sequences):
            if not 1 <= len(seq) <= longest:
                return errors.InputError(
                    f"sequences[{i}] has {len(seq)} tokens; a sequence holds 1 to {longest} "
                    "(truncate longer ones, as the tokenizer does).")
            for j, token in enumerate(seq):
                if not 0 <= token < vocab:
                    return errors.InputError(
                        f"sequences[{i}][{j}] is {token}, outside the vocabulary (0 to "
                        f"{vocab - 1}).")
        return errors.InputError("sequences could not be embedded.")

    def __repr__(self):
        return f"SentenceEncoder(version={self._version[:12]}..., source={self._source!r})"
