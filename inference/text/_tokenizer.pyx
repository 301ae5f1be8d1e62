# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
# cython: initializedcheck=False, nonecheck=False
"""BERT's WordPiece tokenizer in C: text in, token ids out, as Hugging Face `tokenizers`.

Private to `inference.text`: use `inference.text.tokenizer.WordPieceTokenizer`,
which checks the settings and the input types before anything reaches here.

One pass over the text's code points, with no intermediate strings:

  1. special tokens ("[CLS]", ...) are matched in the raw text, case-sensitively,
     anywhere (even inside a word), leftmost and longest first, as tokenizers'
     added-vocabulary split does for tokens with normalized=false;
  2. every other code point is normalized on its own through the tables of
     `_tokenizer_tables` (what BertNormalizer does to each code point, probed
     from tokenizers itself: controls dropped, whitespace to a space, CJK
     ideographs isolated, NFD with non-spacing marks removed, lower-cased),
     with NFD's canonical reordering of the marks that survive;
  3. the normalized code points are split into words at whitespace and around
     each punctuation character (BertPreTokenizer), and
  4. each word is cut into the longest vocabulary pieces from its start
     ("##" marks a continuation); a word longer than max_input_chars_per_word
     or with no match at some point becomes one [UNK].

The ids stop at `max_pieces` (max_length minus [CLS] and [SEP]): what is cut
off never changes what is kept, so the rest of a long text is not read.
Everything after argument unpacking runs without the GIL; `encode_batch`
releases it once per 256 texts (long texts given to `encode` release it too).
"""

from cpython.mem cimport PyMem_Free, PyMem_Malloc
from libc.stdint cimport int32_t, uint8_t, uint16_t, uint32_t, uint64_t
from libc.string cimport memcmp, memset

from inference.text import _tokenizer_tables as _tables

cdef extern from "Python.h":
    # Strings made by the legacy C API may need readying before their data is read
    # (a no-op in Python 3.12+).
    int PyUnicode_READY(object o) except -1
    int PyUnicode_KIND(object o)
    void* PyUnicode_DATA(object o)
    Py_ssize_t PyUnicode_GET_LENGTH(object o)
    uint32_t PyUnicode_READ(int kind, const void* data, Py_ssize_t index) nogil

cdef enum:
    # Kinds of _tokenizer_tables (tests/data/make_tokenizer_tables.py explains them).
    KEEP = 0
    DROP = 1
    STRIP = 2
    SPACE = 3
    ISOLATE = 4
    HANGUL = 5
    MAP = 6
    KIND_MASK = 7
    PUNCT = 8
    WHITESPACE = 16
    CCC_SHIFT = 8
    MAPPING_SHIFT = 16
    # The two-stage code point table: blocks of 256 entries.
    BLOCK_BITS = 8
    BLOCK = 256
    N_BLOCKS = 0x110000 >> 8
    # Longest word kept in the word buffer (longer ones are [UNK] anyway).
    MAX_WORD = 1024
    # Hangul syllable decomposition (Unicode 3.12).
    S_BASE = 0xAC00
    L_BASE = 0x1100
    V_BASE = 0x1161
    T_BASE = 0x11A7
    V_COUNT = 21
    T_COUNT = 28
    S_COUNT = 11172
    # Texts tokenized per release of the GIL by encode_batch.
    BATCH_CHUNK = 256
    # Error codes of tokenize().
    ERR_SURROGATE = -1
    ERR_MEMORY = -2

# The code point tables, built once at import from _tokenizer_tables.
cdef uint16_t _stage1[N_BLOCKS]
cdef uint32_t* _stage2 = NULL
cdef uint32_t _ascii[128]
cdef uint32_t _ascii_word[128]  # letters and digits, lower-cased; 0 for the rest
cdef uint32_t* _pool = NULL      # the MAP outputs, one after another
cdef uint32_t* _pool_at = NULL   # mapping index -> (offset << 8 | length)


cdef inline uint32_t _entry(uint32_t c) noexcept nogil:
    if c < 128:
        return _ascii[c]
    return _stage2[(<uint32_t>_stage1[c >> BLOCK_BITS] << BLOCK_BITS) | (c & (BLOCK - 1))]


def _build_tables():
    """Fill the two-stage table; identical blocks (most of the code space) are shared."""
    global _stage2, _pool, _pool_at
    cdef uint32_t* flat = <uint32_t*>PyMem_Malloc(0x110000 * sizeof(uint32_t))
    if flat == NULL:
        raise MemoryError()
    cdef Py_ssize_t c, b, i, n_mappings = len(_tables.MAPPINGS)
    cdef uint32_t entry
    pool_size = sum(len(v) for v in _tables.MAPPINGS.values())
    _pool = <uint32_t*>PyMem_Malloc((pool_size + 1) * sizeof(uint32_t))
    _pool_at = <uint32_t*>PyMem_Malloc((n_mappings + 1) * sizeof(uint32_t))
    if _pool == NULL or _pool_at == NULL:
        raise MemoryError()
    index = {}
    offset = 0
    for i, (code, out) in enumerate(sorted(_tables.MAPPINGS.items())):
        index[code] = i
        _pool_at[i] = (offset << 8) | len(out)
        for ch in out:
            _pool[offset] = ord(ch)
            offset += 1
    try:
        expected = 0
        for first, last, entry in _tables.RANGES:
            if first != expected or last < first:
                raise ImportError("inference.text._tokenizer_tables: RANGES has a gap at "
                                  f"U+{expected:04X}; regenerate it "
                                  "(inference/text/tests/data/make_tokenizer_tables.py)")
            for c in range(first, last + 1):
                flat[c] = entry
                if entry & KIND_MASK == MAP:
                    flat[c] = entry | (<uint32_t>index[c] << MAPPING_SHIFT)
            expected = last + 1
        if expected != 0x110000:
            raise ImportError("inference.text._tokenizer_tables: RANGES stops at "
                              f"U+{expected:04X}; regenerate it "
                              "(inference/text/tests/data/make_tokenizer_tables.py)")
        blocks = {}
        for b in range(N_BLOCKS):
            key = (<char*>&flat[b * BLOCK])[:BLOCK * sizeof(uint32_t)]
            _stage1[b] = blocks.setdefault(key, len(blocks))
        _stage2 = <uint32_t*>PyMem_Malloc(len(blocks) * BLOCK * sizeof(uint32_t))
        if _stage2 == NULL:
            raise MemoryError()
        for key, b in blocks.items():
            for i in range(BLOCK):
                _stage2[b * BLOCK + i] = (<uint32_t*><char*>key)[i]
        for c in range(128):
            _ascii[c] = flat[c]
            _ascii_word[c] = 0
            if flat[c] & (KIND_MASK | PUNCT | WHITESPACE) == KEEP and not flat[c] >> CCC_SHIFT:
                _ascii_word[c] = c
            elif flat[c] & KIND_MASK == MAP and _tables.MAPPINGS[c].isalnum():
                _ascii_word[c] = ord(_tables.MAPPINGS[c])
    finally:
        PyMem_Free(flat)


_build_tables()


cdef struct Slot:
    uint32_t hash      # 0: empty slot
    int32_t id
    uint32_t offset    # of the key's code points in Vocab.keys
    uint32_t length
    uint32_t continuation


cdef struct Scratch:
    uint32_t word[MAX_WORD]
    uint32_t hashes[MAX_WORD]
    int32_t pieces[MAX_WORD]


cdef inline uint32_t _hash_step(uint32_t h, uint32_t c) noexcept nogil:
    # FNV-1a over the code point's 3 low bytes (code points fit in 21 bits).
    h = (h ^ (c & 0xFF)) * 16777619u
    h = (h ^ ((c >> 8) & 0xFF)) * 16777619u
    return (h ^ (c >> 16)) * 16777619u


cdef inline uint32_t _hash_start(uint32_t continuation) noexcept nogil:
    return 2166136261u ^ (continuation * 0x9E3779B9u)


cdef inline uint32_t _hash_final(uint32_t h) noexcept nogil:
    return h | 1  # never 0, the empty-slot mark


cdef class Vocab:
    """The vocabulary as an open-addressing hash table of code point strings.

    A token "##x" is stored twice: as itself, and as "x" marked continuation;
    a lookup of a piece that does not start a word asks for the continuation
    form, which equals looking up "##" + piece, as tokenizers does.
    """

    cdef Slot* slots
    cdef uint32_t mask
    cdef uint32_t* keys
    cdef readonly Py_ssize_t max_piece  # longest key, in code points
    cdef readonly int32_t unk_id, cls_id, sep_id
    cdef readonly Py_ssize_t max_pieces, max_word_chars
    cdef uint32_t* specials       # special tokens' code points, one after another
    cdef Py_ssize_t* special_at  # offset, length of each special token
    cdef int32_t* special_ids
    cdef Py_ssize_t n_specials
    cdef uint32_t special_first_min, special_first_max

    def __cinit__(self):
        self.slots = NULL
        self.keys = NULL
        self.specials = NULL
        self.special_at = NULL
        self.special_ids = NULL

    def __dealloc__(self):
        PyMem_Free(self.slots)
        PyMem_Free(self.keys)
        PyMem_Free(self.specials)
        PyMem_Free(self.special_at)
        PyMem_Free(self.special_ids)

    def __init__(self, list tokens, str prefix, dict specials, int32_t unk_id,
                 int32_t cls_id, int32_t sep_id, Py_ssize_t max_pieces,
                 Py_ssize_t max_word_chars):
        """tokens: the vocabulary in id order (unique); specials: {token: id}."""
        if self.slots != NULL:
            raise TypeError("a Vocab is made once")
        cdef Py_ssize_t n_keys = 0, n_chars = 0, size = 1, i, at = 0
        for token in tokens:
            n_keys += 1
            n_chars += len(token)
            if prefix and token.startswith(prefix):
                n_keys += 1
        while size < 2 * n_keys + 2:
            size *= 2
        self.mask = size - 1
        self.slots = <Slot*>PyMem_Malloc(size * sizeof(Slot))
        self.keys = <uint32_t*>PyMem_Malloc((n_chars + 1) * sizeof(uint32_t))
        if self.slots == NULL or self.keys == NULL:
            raise MemoryError()
        memset(self.slots, 0, size * sizeof(Slot))
        self.max_piece = 0
        for i, token in enumerate(tokens):
            start = at
            for ch in token:
                self.keys[at] = ord(ch)
                at += 1
            self._insert(start, at - start, 0, i)
            if prefix and token.startswith(prefix):
                self._insert(start + len(prefix), at - start - len(prefix), 1, i)
        self.unk_id, self.cls_id, self.sep_id = unk_id, cls_id, sep_id
        self.max_pieces, self.max_word_chars = max_pieces, max_word_chars
        self._set_specials(specials)

    cdef _insert(self, Py_ssize_t offset, Py_ssize_t length, uint32_t continuation, int32_t id):
        cdef uint32_t h = _hash_start(continuation)
        cdef Py_ssize_t k
        if length == 0:
            return  # an empty piece is never looked up
        for k in range(length):
            h = _hash_step(h, self.keys[offset + k])
        h = _hash_final(h)
        cdef uint32_t i = h & self.mask
        while self.slots[i].hash != 0:
            if (self.slots[i].hash == h and self.slots[i].length == length
                    and self.slots[i].continuation == continuation
                    and memcmp(&self.keys[self.slots[i].offset], &self.keys[offset],
                               length * sizeof(uint32_t)) == 0):
                raise ValueError(f"id {id} repeats the token of id {self.slots[i].id}")
            i = (i + 1) & self.mask
        self.slots[i].hash = h
        self.slots[i].id = id
        self.slots[i].offset = offset
        self.slots[i].length = length
        self.slots[i].continuation = continuation
        if length > self.max_piece:
            self.max_piece = length

    cdef _set_specials(self, dict specials):
        cdef Py_ssize_t n = len(specials), total = 0, i = 0, at = 0
        for token in specials:
            total += len(token)
        self.specials = <uint32_t*>PyMem_Malloc((total + 1) * sizeof(uint32_t))
        self.special_at = <Py_ssize_t*>PyMem_Malloc((2 * n + 1) * sizeof(Py_ssize_t))
        self.special_ids = <int32_t*>PyMem_Malloc((n + 1) * sizeof(int32_t))
        if self.specials == NULL or self.special_at == NULL or self.special_ids == NULL:
            raise MemoryError()
        self.n_specials = n
        self.special_first_min, self.special_first_max = 0x10FFFF, 0
        for token, id in specials.items():
            self.special_at[2 * i] = at
            self.special_at[2 * i + 1] = len(token)
            self.special_ids[i] = id
            for ch in token:
                self.specials[at] = ord(ch)
                at += 1
            first = ord(token[0])
            self.special_first_min = min(self.special_first_min, first)
            self.special_first_max = max(self.special_first_max, first)
            i += 1

    cdef inline int32_t find(self, const uint32_t* word, Py_ssize_t length, uint32_t h,
                             uint32_t continuation) noexcept nogil:
        """The id of piece `word[:length]` (hash h), or -1."""
        cdef uint32_t i = h & self.mask
        cdef const Slot* slot
        while True:
            slot = &self.slots[i]
            if slot.hash == 0:
                return -1
            if (slot.hash == h and slot.length == length and slot.continuation == continuation
                    and memcmp(&self.keys[slot.offset], word, length * sizeof(uint32_t)) == 0):
                return slot.id
            i = (i + 1) & self.mask

    cdef inline Py_ssize_t match_special(self, int kind, const void* data, Py_ssize_t at,
                                         Py_ssize_t n, int32_t* id) noexcept nogil:
        """Length of the longest special token at data[at:], or 0 (its id in *id)."""
        cdef Py_ssize_t i, k, length, best = 0
        cdef const uint32_t* token
        for i in range(self.n_specials):
            length = self.special_at[2 * i + 1]
            if length <= best or at + length > n:
                continue
            token = &self.specials[self.special_at[2 * i]]
            for k in range(length):
                if PyUnicode_READ(kind, data, at + k) != token[k]:
                    break
            else:
                best = length
                id[0] = self.special_ids[i]
        return best


cdef struct State:
    # The word being built and the ids so far.
    Py_ssize_t word_len     # normalized code points in the word (may exceed MAX_WORD)
    Py_ssize_t run_start    # where the current run of combining marks starts
    int32_t* out
    Py_ssize_t n_out
    Py_ssize_t max_out


cdef inline bint _flush(Vocab vocab, Scratch* s, State* st) noexcept nogil:
    """Cut the word into pieces; True when the ids are full."""
    cdef Py_ssize_t length = st.word_len, start = 0, end, top, n = 0, k
    cdef uint32_t h
    cdef int32_t id = -1
    st.word_len = 0
    st.run_start = 0
    if length == 0:
        return st.n_out >= st.max_out
    if length > vocab.max_word_chars or length > MAX_WORD:
        s.pieces[0] = vocab.unk_id
        n = 1
    else:
        while start < length:
            top = start + vocab.max_piece
            if top > length:
                top = length
            h = _hash_start(start > 0)
            for k in range(start, top):
                h = _hash_step(h, s.word[k])
                s.hashes[k] = _hash_final(h)
            end = top
            id = -1
            while end > start:
                id = vocab.find(&s.word[start], end - start, s.hashes[end - 1], start > 0)
                if id >= 0:
                    break
                end -= 1
            if id < 0:
                s.pieces[0] = vocab.unk_id
                n = 1
                break
            s.pieces[n] = id
            n += 1
            start = end
    for k in range(n):
        if st.n_out >= st.max_out:
            return True
        st.out[st.n_out] = s.pieces[k]
        st.n_out += 1
    return st.n_out >= st.max_out


cdef inline bint _emit(Vocab vocab, Scratch* s, State* st, uint32_t c) noexcept nogil:
    """Add normalized code point c; True when the ids are full."""
    cdef uint32_t e = _entry(c), ccc
    cdef Py_ssize_t at
    if e & (WHITESPACE | PUNCT):
        if _flush(vocab, s, st):
            return True
        if e & PUNCT:
            s.word[0] = c
            st.word_len = 1
            return _flush(vocab, s, st)
        return False
    ccc = e >> CCC_SHIFT & 0xFF
    if st.word_len >= MAX_WORD:
        st.word_len += 1  # too long to keep: it will be [UNK], only its length counts
        return False
    if ccc == 0:
        s.word[st.word_len] = c
        st.word_len += 1
        st.run_start = st.word_len
        return False
    # NFD's canonical reordering: a stable sort of the run of marks by class.
    at = st.word_len
    while at > st.run_start and (_entry(s.word[at - 1]) >> CCC_SHIFT & 0xFF) > ccc:
        s.word[at] = s.word[at - 1]
        at -= 1
    s.word[at] = c
    st.word_len += 1
    return False


cdef inline bint _step(Vocab vocab, Scratch* s, State* st, uint32_t c) noexcept nogil:
    """Normalize code point c of the text into the word; True when the ids are full."""
    cdef uint32_t e, kd, at, k, index
    if c < 128 and _ascii_word[c] and st.word_len < MAX_WORD:
        # The ASCII fast path: a letter or digit (lower-cased) extends the word.
        s.word[st.word_len] = _ascii_word[c]
        st.word_len += 1
        st.run_start = st.word_len
        return False
    e = _entry(c)
    kd = e & KIND_MASK
    if kd == KEEP:
        return _emit(vocab, s, st, c)
    if kd == MAP:
        at = _pool_at[e >> MAPPING_SHIFT]
        for k in range(at & 0xFF):
            if _emit(vocab, s, st, _pool[(at >> 8) + k]):
                return True
        return False
    if kd == SPACE:
        return _emit(vocab, s, st, 0x20)
    if kd == ISOLATE:
        if _flush(vocab, s, st):
            return True
        s.word[0] = c
        st.word_len = 1
        return _flush(vocab, s, st)
    if kd == STRIP:
        if (e >> CCC_SHIFT & 0xFF) == 0:
            st.run_start = st.word_len
        return False
    if kd == HANGUL:
        index = c - S_BASE
        if (_emit(vocab, s, st, L_BASE + index // (V_COUNT * T_COUNT))
                or _emit(vocab, s, st, V_BASE + index % (V_COUNT * T_COUNT) // T_COUNT)):
            return True
        if index % T_COUNT:
            return _emit(vocab, s, st, T_BASE + index % T_COUNT)
    return False  # DROP


cdef Py_ssize_t _segment(Vocab vocab, Scratch* s, State* st, int kind, const void* data,
                         Py_ssize_t begin, Py_ssize_t end) noexcept nogil:
    """Normalize and cut data[begin:end]: 1 when the ids are full, else 0."""
    cdef Py_ssize_t i
    # One loop per string width, so that each reads its characters directly.
    if kind == 1:
        for i in range(begin, end):
            if _step(vocab, s, st, (<const uint8_t*>data)[i]):
                return 1
    elif kind == 2:
        for i in range(begin, end):
            if _step(vocab, s, st, (<const uint16_t*>data)[i]):
                return 1
    else:
        for i in range(begin, end):
            if _step(vocab, s, st, (<const uint32_t*>data)[i]):
                return 1
    # Segments are normalized apart: a special token ends the word.
    if _flush(vocab, s, st):
        return 1
    return 0


cdef Py_ssize_t _tokenize(Vocab vocab, Scratch* s, int kind, const void* data, Py_ssize_t n,
                          int32_t* out) noexcept nogil:
    """[CLS] pieces [SEP] of a text into out (max_pieces + 2 ids): their number, or an error."""
    cdef State st
    cdef Py_ssize_t i = 0, begin = 0, length
    cdef int32_t special_id = 0
    cdef uint32_t c
    if kind != 1:  # tokenizers refuses text that is not valid Unicode, even past the cut
        for i in range(n):
            c = PyUnicode_READ(kind, data, i)
            if c >= 0xD800 and c < 0xE000:
                return ERR_SURROGATE
        i = 0
    out[0] = vocab.cls_id
    st.word_len = 0
    st.run_start = 0
    st.out = out + 1
    st.n_out = 0
    st.max_out = vocab.max_pieces
    while i < n:
        c = PyUnicode_READ(kind, data, i)
        if c >= vocab.special_first_min and c <= vocab.special_first_max:
            length = vocab.match_special(kind, data, i, n, &special_id)
            if length:
                if _segment(vocab, s, &st, kind, data, begin, i):
                    break
                st.out[st.n_out] = special_id
                st.n_out += 1
                i += length
                begin = i
                if st.n_out >= st.max_out:
                    break
                continue
        i += 1
    else:
        _segment(vocab, s, &st, kind, data, begin, n)
    out[st.n_out + 1] = vocab.sep_id
    return st.n_out + 2


cdef Py_ssize_t _first_surrogate(str text):
    cdef Py_ssize_t i
    for i in range(len(text)):
        if 0xD800 <= ord(text[i]) < 0xE000:
            return i
    return -1


def encode(Vocab vocab, str text, out_type):
    """[CLS] pieces [SEP] of `text` as `out_type` (array.array('i') of int32)."""
    cdef Scratch* s = <Scratch*>PyMem_Malloc(sizeof(Scratch))
    if s == NULL:
        raise MemoryError()
    ids = out_type()
    ids.frombytes(bytes((vocab.max_pieces + 2) * 4))
    cdef int32_t[::1] view = ids
    cdef Py_ssize_t n
    PyUnicode_READY(text)
    cdef int kind = PyUnicode_KIND(text)
    cdef const void* data = PyUnicode_DATA(text)
    cdef Py_ssize_t length = PyUnicode_GET_LENGTH(text)
    try:
        if length > 4096:
            with nogil:
                n = _tokenize(vocab, s, kind, data, length, &view[0])
        else:
            n = _tokenize(vocab, s, kind, data, length, &view[0])
    finally:
        PyMem_Free(s)
    del view
    if n == ERR_SURROGATE:
        return _first_surrogate(text)
    del ids[n:]
    return ids


def encode_batch(Vocab vocab, list texts, out_type):
    """encode() of each str of `texts`, releasing the GIL once per BATCH_CHUNK texts.

    Returns the list of id arrays, or the index of the first text holding a
    surrogate and that surrogate's index in it.
    """
    cdef Py_ssize_t n_texts = len(texts), i, first, n, width = vocab.max_pieces + 2
    cdef Py_ssize_t bad = -1
    cdef Scratch* s = <Scratch*>PyMem_Malloc(sizeof(Scratch))
    cdef int kinds[BATCH_CHUNK]
    cdef const void* datas[BATCH_CHUNK]
    cdef Py_ssize_t lengths[BATCH_CHUNK]
    # Bounded memory whatever the batch size: BATCH_CHUNK rows of ids at a time.
    cdef int32_t* ids = <int32_t*>PyMem_Malloc(BATCH_CHUNK * width * sizeof(int32_t))
    result = []
    try:
        if s == NULL or ids == NULL:
            raise MemoryError()
        for first in range(0, n_texts, BATCH_CHUNK):
            n = min(BATCH_CHUNK, n_texts - first)
            for i in range(n):
                text = texts[first + i]
                PyUnicode_READY(text)
                kinds[i] = PyUnicode_KIND(text)
                datas[i] = PyUnicode_DATA(text)
                lengths[i] = PyUnicode_GET_LENGTH(text)
            with nogil:
                for i in range(n):
                    lengths[i] = _tokenize(vocab, s, kinds[i], datas[i], lengths[i],
                                           &ids[i * width])
                    if lengths[i] < 0:
                        bad = first + i
                        break
            if bad >= 0:
                return bad, _first_surrogate(texts[bad])
            for i in range(n):
                row = out_type()
                row.frombytes((<char*>&ids[i * width])[:lengths[i] * sizeof(int32_t)])
                result.append(row)
        return result
    finally:
        PyMem_Free(s)
        PyMem_Free(ids)
