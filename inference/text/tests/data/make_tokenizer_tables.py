"""Write `_tokenizer_tables.py`: what BERT's normalizer and pre-tokenizer do to each code point.

    REFERENCE_VENV/bin/python inference/text/tests/data/make_tokenizer_tables.py \
        inference/text/_tokenizer_tables.py

Run once with the reference venv's python (it has Hugging Face `tokenizers`;
models/minilm/README.md says how to make it); the output is committed and the
runtime never imports `tokenizers`.

Why probe instead of using Python's `unicodedata`: the Rust library decides
with its own Unicode tables (the `unicode_categories` crate for control and
punctuation, which predates many emoji and calls them unassigned, so they are
dropped; the standard library's `char::is_whitespace` and `to_lowercase`;
`unicode-normalization` for NFD). Python's tables are another Unicode version.
So every code point is put through the very normalizer and pre-tokenizer the
model's tokenizer.json names, and the answer is recorded:

  kind   what the normalizer does to the code point on its own:
         KEEP (unchanged), DROP (removed as a control or unassigned code point,
         before NFD), STRIP (removed as a non-spacing mark, after NFD),
         SPACE (becomes a space),
         ISOLATE (a CJK ideograph, surrounded by spaces), HANGUL (a precomposed
         syllable, decomposed into its jamo by the standard algorithm), MAP (any
         other result, recorded in MAPPINGS)
  flags  what the pre-tokenizer makes of the code point once normalized:
         PUNCT (a word of its own), WHITESPACE (a word boundary)
  ccc    the canonical combining class (bits 8-15), for NFD's canonical
         reordering: this Python's unicodedata value (combining classes never
         change once assigned) where tokenizers' NFD knows the code point as
         a combining mark, 0 where its older tables do not; for STRIP code
         points, the least class in their NFD (0: they end a run of marks)

The normalizer works on one code point at a time, except NFD's canonical
reordering of combining marks: after accents are stripped, it only matters
for the few spacing marks with a non-zero combining class (musical symbols,
some viramas) next to each other in the wrong order, and is done with the
ccc field. The script checks random strings, and strings of marks, against
the real normalizer and reports any difference.
"""

import argparse
import random
import sys

import unicodedata

import tokenizers
from tokenizers import normalizers, pre_tokenizers

KEEP, DROP, STRIP, SPACE, ISOLATE, HANGUL, MAP = range(7)
KIND_NAMES = ("KEEP", "DROP", "STRIP", "SPACE", "ISOLATE", "HANGUL", "MAP")
PUNCT, WHITESPACE = 8, 16
CCC_SHIFT = 8
MAX_CODE_POINT = 0x10FFFF
SURROGATES = range(0xD800, 0xE000)

# The standard Hangul syllable decomposition (Unicode chapter 3.12).
S_BASE, L_BASE, V_BASE, T_BASE = 0xAC00, 0x1100, 0x1161, 0x11A7
V_COUNT, T_COUNT = 21, 28
S_COUNT = 19 * V_COUNT * T_COUNT


def hangul_jamo(code):
    """The jamo of precomposed syllable `code`, or None."""
    index = code - S_BASE
    if not 0 <= index < S_COUNT:
        return None
    lead, vowel = divmod(index, V_COUNT * T_COUNT)
    jamo = chr(L_BASE + lead) + chr(V_BASE + vowel // T_COUNT)
    if index % T_COUNT:
        jamo += chr(T_BASE + index % T_COUNT)
    return jamo


def bert_normalizer():
    """The model's normalizer (tokenizer.json: lowercase, strip_accents follows it)."""
    return normalizers.BertNormalizer(clean_text=True, handle_chinese_chars=True,
                                      strip_accents=None, lowercase=True)


def cleaner():
    """The normalizer's first step alone (controls dropped, whitespace made spaces)."""
    return normalizers.BertNormalizer(clean_text=True, handle_chinese_chars=False,
                                      strip_accents=False, lowercase=False)


def combining_class(nfd, char):
    """The canonical combining class tokenizers' NFD gives `char`."""
    ccc = unicodedata.combining(char)
    if ccc in (0, 240):
        return ccc
    # A mark it knows moves before U+0345 (class 240) in canonical order.
    return ccc if nfd.normalize_str(f"a\u0345{char}")[1] != "\u0345" else 0


def classify(normalizer, pre_tokenizer):
    """(entries, mappings): entries[code] = kind | flags for every code point."""
    entries = [DROP] * (MAX_CODE_POINT + 1)
    mappings = {}
    clean, nfd = cleaner(), normalizers.NFD()
    for code in range(MAX_CODE_POINT + 1):
        if code in SURROGATES:
            continue  # not valid in a str given to tokenizers; the runtime refuses them
        char = chr(code)
        out = normalizer.normalize_str(char)
        if out == char:
            kind = KEEP
        elif out == "":
            kind = DROP if clean.normalize_str(char) == "" else STRIP
        elif out == " ":
            kind = SPACE
        elif out == f" {char} ":
            kind = ISOLATE
        elif out == hangul_jamo(code):
            kind = HANGUL
        else:
            kind, mappings[code] = MAP, out
        words = pre_tokenizer.pre_tokenize_str(f"a{char}b")
        flags = 0
        if [w for w, _ in words] == ["a", "b"]:
            flags = WHITESPACE
        elif [w for w, _ in words] == ["a", char, "b"]:
            flags = PUNCT
        if kind == STRIP:  # what matters is whether its NFD holds a starter (class 0)
            ccc = min(combining_class(nfd, c) for c in nfd.normalize_str(char))
        else:
            ccc = combining_class(nfd, char)
        entries[code] = kind | flags | ccc << CCC_SHIFT
    return entries, mappings


def model_normalize(entries, mappings, text):
    """Words of `text` as this table says (the algorithm the Cython module implements)."""
    words, word = [], []
    run = [0]  # where the current run of combining marks starts in `word`

    def emit(char):
        flags = entries[ord(char)]
        ccc = flags >> CCC_SHIFT
        if flags & (WHITESPACE | PUNCT):
            if word:
                words.append("".join(word))
                word.clear()
            if flags & PUNCT:
                words.append(char)
            run[0] = 0
        elif ccc == 0:
            word.append(char)
            run[0] = len(word)
        else:  # canonical reordering: a stable sort of the run by ccc
            at = len(word)
            while at > run[0] and entries[ord(word[at - 1])] >> CCC_SHIFT > ccc:
                at -= 1
            word.insert(at, char)

    for char in text:
        entry = entries[ord(char)]
        kind = entry & 7
        if kind == STRIP and entry >> CCC_SHIFT == 0:
            run[0] = len(word)
        elif kind == KEEP:
            emit(char)
        elif kind == SPACE:
            emit(" ")
        elif kind == ISOLATE:
            for out in f" {char} ":
                emit(out)
        elif kind == HANGUL:
            for out in hangul_jamo(ord(char)):
                emit(out)
        elif kind == MAP:
            for out in mappings[ord(char)]:
                emit(out)
    if word:
        words.append("".join(word))
    return words


def check(entries, mappings, normalizer, pre_tokenizer, samples, seed):
    """Count random strings whose words differ from the real normalizer's."""
    rng = random.Random(seed)
    pool = [c for c in range(MAX_CODE_POINT + 1) if c not in SURROGATES]
    marks = [c for c in pool if entries[c] >> CCC_SHIFT or entries[c] & 7 == STRIP]
    spacing_marks = [c for c in marks if entries[c] & 7 != STRIP]
    ascii_ = list(range(128))
    differences = 0
    for _ in range(samples):
        length = rng.randint(1, 24)
        text = "".join(chr(rng.choice(rng.choice((pool, marks, spacing_marks, ascii_))))
                       for _ in range(length))
        expected = [w for w, _ in pre_tokenizer.pre_tokenize_str(normalizer.normalize_str(text))]
        if model_normalize(entries, mappings, text) != expected:
            differences += 1
            if differences <= 5:
                print(f"differs: {text!r}", file=sys.stderr)
    return differences


def ranges(entries):
    """Runs of equal entries: [(first, last, entry)]."""
    runs = []
    start = 0
    for code in range(1, MAX_CODE_POINT + 2):
        if code > MAX_CODE_POINT or entries[code] != entries[start]:
            runs.append((start, code - 1, entries[start]))
            start = code
    return runs


def render(entries, mappings):
    """The text of _tokenizer_tables.py."""
    lines = [
        '"""Generated by tests/data/make_tokenizer_tables.py: do not edit.',
        "",
        "What BERT's normalizer and pre-tokenizer (tokenizers "
        f"{tokenizers.__version__}) do to each code",
        "point; the generator explains the fields.",
        '"""',
        "# pylint: disable=too-many-lines",
        "",
        f"{', '.join(KIND_NAMES)} = range({len(KIND_NAMES)})",
        f"PUNCT, WHITESPACE, CCC_SHIFT = {PUNCT}, {WHITESPACE}, {CCC_SHIFT}",
        "",
        "# (first, last, kind | flags | ccc << CCC_SHIFT): every code point from 0 to",
        "# 0x10FFFF, in order.",
        "RANGES = (",
    ]
    for first, last, entry in ranges(entries):
        flags = [KIND_NAMES[entry & 7]]
        flags += ["PUNCT"] if entry & PUNCT else []
        flags += ["WHITESPACE"] if entry & WHITESPACE else []
        flags += [f"{entry >> CCC_SHIFT} << CCC_SHIFT"] if entry >> CCC_SHIFT else []
        lines.append(f"    (0x{first:04X}, 0x{last:04X}, {' | '.join(flags)}),")
    lines += [")", "", "# MAP code points: the normalizer's output for each.", "MAPPINGS = {"]
    for code, out in sorted(mappings.items()):
        lines.append(f"    0x{code:04X}: {out!r},")
    lines += ["}", ""]
    return "\n".join(lines)


def main(argv=None):
    """Probe, check, write."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("output", help="where to write the module (_tokenizer_tables.py)")
    parser.add_argument("--samples", type=int, default=200000,
                        help="random strings checked against the real normalizer")
    args = parser.parse_args(argv)
    normalizer, pre_tokenizer = bert_normalizer(), pre_tokenizers.BertPreTokenizer()
    entries, mappings = classify(normalizer, pre_tokenizer)
    differences = check(entries, mappings, normalizer, pre_tokenizer, args.samples, seed=15)
    print(f"{differences} of {args.samples} random strings differ", file=sys.stderr)
    with open(args.output, "w", encoding="utf-8") as out:
        out.write(render(entries, mappings))
    return 0


if __name__ == "__main__":
    sys.exit(main())
