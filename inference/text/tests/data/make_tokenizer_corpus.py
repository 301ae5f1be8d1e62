"""Write tokenizer_corpus.jsonl: the texts the tokenizer must encode exactly as tokenizers does.

    python3 inference/text/tests/data/make_tokenizer_corpus.py \
        inference/text/tests/data/tokenizer_corpus.jsonl

Written for this repository: hand-made sentences in many languages and
scripts, and texts built from them with a fixed seed to reach the awkward
cases (controls, invisible characters, marks, emoji sequences, long inputs,
literal special tokens, truncation boundaries). One JSON string per line,
ASCII-escaped, so every control character and line separator survives.
After changing it, recompute the reference ids (compute_tokenizer_reference.py).
"""

import json
import random
import sys

SENTENCES = {
    "english": [
        "The quick brown fox jumps over the lazy dog.",
        "Reproducible builds make every release traceable to its sources.",
        "She said: \"I'll be there at 5 p.m., don't wait!\"",
        "Can't, won't, shouldn't've, y'all'd've: contractions everywhere.",
        "The model's vocabulary has 30,522 entries; most are English word pieces.",
        "Tokenization splits unbelievably long words into smaller pieces.",
        "A paraphrase should land closer than an unrelated sentence.",
        "Mr. O'Neil paid $1,234.56 (tax incl.) on 2024-02-29 at 23:59:59.",
        "E-mail me at first.last+tag@example.org or call +1 (555) 010-9999.",
        "HTTPS://Example.COM/Path/To/Page?Query=Value&Other=2#Fragment",
        "Supercalifragilisticexpialidocious is a word from a film.",
        "Antidisestablishmentarianism and pneumonoultramicroscopicsilicovolcanoconiosis.",
        "iPhone, eBay, McDonald's, JavaScript and LaTeX mix their cases.",
        "WHY IS EVERYONE SHOUTING IN THIS MEETING?",
        "the lowercase sentence has no capital letters at all",
        "Version 3.14.159-rc.2+build.7 fixes CVE-2021-44228.",
        "Temperatures range from -40 °C to +45 °C (−40 °F to 113 °F).",
        "1st, 2nd, 3rd, 4th ... 21st, 22nd, 101st, 1000000th.",
        "Pi is roughly 3.14159265358979323846264338327950288419716939937510.",
        "To be, or not to be, that is the question.",
    ],
    "french": [
        "L'été dernier, nous sommes allés à Québec en août.",
        "Où est la bibliothèque ? Elle est fermée le dimanche.",
        "Noël approche : les élèves préparent un spectacle très réussi.",
        "Ça coûte cher, mais c'est déjà payé — voilà tout.",
        "Le cœur a ses raisons que la raison ne connaît point.",
        "« Bonjour », dit-il, « comment ça va aujourd'hui ? »",
        "Les œufs, la crème brûlée et le pâté en croûte.",
    ],
    "german": [
        "Die Straße ist nass, weil es gestern geregnet hat.",
        "Größe, Übermut und Äpfel: Umlaute sind überall.",
        "Donaudampfschifffahrtsgesellschaftskapitänsmütze ist ein langes Wort.",
        "„Guten Morgen“, sagte die Lehrerin zu den Schülern.",
        "Der Fußgänger überquerte die Kreuzung bei Grün.",
        "GROSSBUCHSTABEN MIT ẞ UND ÄÖÜ SIND SELTEN.",
    ],
    "spanish": [
        "¿Dónde está la estación de tren? ¡Necesito ayuda!",
        "El niño comió una piña en la montaña.",
        "La canción más famosa del año pasó desapercibida.",
        "Mañana habrá reunión a las diez en punto.",
        "El pingüino y la cigüeña viven en lugares muy distintos.",
    ],
    "vietnamese": [
        "Tiếng Việt có rất nhiều dấu thanh và dấu phụ.",
        "Hà Nội là thủ đô của nước Cộng hòa Xã hội chủ nghĩa Việt Nam.",
        "Tôi đang học lập trình máy tính ở trường đại học.",
        "Phở bò và bánh mì là những món ăn nổi tiếng.",
        "Người ta nói rằng thời gian là vàng bạc.",
    ],
    "portuguese_nordic_etc": [
        "A ação foi concluída com êxito, não é?",
        "Smørrebrød og rødgrød med fløde på Ærø.",
        "Åsa köpte fyra äpplen på torget i Göteborg.",
        "Zażółć gęślą jaźń, powiedział Łukasz.",
        "Příliš žluťoučký kůň úpěl ďábelské ódy.",
        "İstanbul'da ılık bir akşam; Iğdır ve Şırnak uzakta.",
        "Árvíztűrő tükörfúrógép és őszibarack.",
    ],
    "chinese": [
        "我们今天去公园散步，天气非常好。",
        "机器学习模型需要大量的数据来训练。",
        "請問這個字怎麼讀？我不太確定。",
        "北京是中华人民共和国的首都。",
        "他说：“明天见！”然后就走了。",
        "中文句子里也可以有English单词和123数字。",
    ],
    "japanese": [
        "東京は日本の首都です。",
        "今日はとても暑いですね、アイスクリームを食べましょう。",
        "カタカナとひらがなと漢字を混ぜて書きます。",
        "「こんにちは」と彼女は言った。",
        "ｶﾀｶﾅの半角文字と全角のＡＢＣ１２３もあります。",
    ],
    "korean": [
        "안녕하세요, 만나서 반갑습니다.",
        "서울은 대한민국의 수도입니다.",
        "한국어는 한글로 씁니다.",
        "오늘 날씨가 정말 좋네요!",
    ],
    "russian": [
        "Съешь же ещё этих мягких французских булок, да выпей чаю.",
        "Москва — столица Российской Федерации.",
        "ПРОГРАММИРОВАНИЕ на Python становится всё популярнее.",
        "Ёлка, ёжик и Щука: буквы Ё и Щ встречаются редко.",
        "Привет, мир! Как дела?",
    ],
    "ukrainian_bulgarian_serbian": [
        "Ґава, їжак і Євген у Києві.",
        "България е държава в Югоизточна Европа.",
        "Љубав, њива и ђак су српске речи.",
    ],
    "arabic": [
        "مرحبا بالعالم، كيف حالك اليوم؟",
        "اللغة العربية جميلة جدًا.",
        "ذهبتُ إلى المكتبةِ لأقرأَ كتابًا.",
        "الأرقام ١٢٣٤٥٦٧٨٩٠ مكتوبة بالعربية.",
    ],
    "persian_urdu": [
        "زبان فارسی بسیار زیباست.",
        "اردو ایک خوبصورت زبان ہے۔",
    ],
    "hebrew": [
        "שלום עולם, מה שלומך?",
        "ירושלים היא עיר עתיקה.",
        "בְּרֵאשִׁית בָּרָא אֱלֹהִים",
    ],
    "hindi": [
        "नमस्ते, आप कैसे हैं?",
        "भारत एक विशाल देश है।",
        "मुझे हिंदी पढ़ना पसंद है।",
        "क़िला, ज़रूर और फ़िल्म में नुक़्ता है।",
    ],
    "other_indic": [
        "আমি বাংলায় গান গাই।",
        "தமிழ் ஒரு பழமையான மொழி.",
        "తెలుగు భాష చాలా మధురమైనది.",
        "ಕನ್ನಡ ಭಾಷೆ ಸುಂದರವಾಗಿದೆ.",
        "മലയാളം ഒരു ദ്രാവിഡ ഭാഷയാണ്.",
        "ਪੰਜਾਬੀ ਭਾਸ਼ਾ ਗੁਰਮੁਖੀ ਵਿੱਚ ਲਿਖੀ ਜਾਂਦੀ ਹੈ।",
        "ગુજરાતી ભાષા સુંદર છે.",
        "සිංහල භාෂාව ලස්සනයි.",
    ],
    "thai_lao_khmer_burmese": [
        "สวัสดีครับ ยินดีที่ได้รู้จัก",
        "ภาษาไทยไม่มีการเว้นวรรคระหว่างคำ",
        "ສະບາຍດີ ປະເທດລາວ",
        "ភាសាខ្មែរ គឺជាភាសាជាតិ",
        "မြန်မာဘာသာစကား",
    ],
    "greek": [
        "Καλημέρα κόσμε, τι κάνεις;",
        "ΟΔΟΣ ΣΙΣΥΦΟΥ: το τελικό σίγμα ς και το Σ.",
        "Η Αθήνα είναι η πρωτεύουσα της Ελλάδας.",
        "Ἐν ἀρχῇ ἦν ὁ λόγος, καὶ ὁ λόγος ἦν πρὸς τὸν θεόν.",
    ],
    "other_scripts": [
        "Բարև աշխարհ, ինչպե՞ս ես։",
        "გამარჯობა, როგორ ხარ?",
        "ᲛᲗᲐᲕᲠᲣᲚᲘ ᲓᲐ ᲛᲮᲔᲓᲠᲣᲚᲘ",
        "ሰላም ለዓለም።",
        "ᏣᎳᎩ ᎦᏬᏂᎯᏍᏗ",
        "ᠮᠣᠩᠭᠣᠯ ᠪᠢᠴᠢᠭ",
        "ཀུན་ལ་བདེ་ལེགས།",
        "ꦧꦱꦗꦮ",
        "ᚠᚢᚦᚨᚱᚲ runes and 𐌰𐌱𐌲 Gothic",
        "𝐁𝐨𝐥𝐝 𝑖𝑡𝑎𝑙𝑖𝑐 𝔉𝔯𝔞𝔨𝔱𝔲𝔯 𝕕𝕠𝕦𝕓𝕝𝕖 mathematical letters",
    ],
}

EMOJI = [
    "😀", "😂", "🥲", "🫠", "🤖", "❤️", "✨", "👍", "👍🏻", "👍🏿", "👋🏽",
    "👨‍👩‍👧‍👦", "👩🏽‍💻", "🏳️‍🌈", "🏴‍☠️", "🧑🏾‍🤝‍🧑🏼", "❤️‍🔥",
    "🇫🇷", "🇯🇵", "🇺🇦", "🇧🇷", "🏴󠁧󠁢󠁳󠁣󠁴󠁿", "1️⃣", "#️⃣", "©️", "™️", "☺︎",
]

PUNCTUATION = [
    "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~",
    "« » „ “ ” ‘ ’ ‚ ‹ › 「 」 『 』 【 】 《 》 〈 〉",
    "— – ‐ ‑ ‒ ― … · • ‣ ※ ⁂ § ¶ † ‡ ‰ ′ ″ ¡ ¿ ⸮ ‽",
    "、 。 ， ！ ？ ： ； ؟ ، ؛ । ॥ ። ၊ ။ ։ ׃ ״",
    "€ £ ¥ ₹ ₽ ₿ ¢ © ® ™ ° ± × ÷ √ ∞ ≈ ≠ ≤ ≥ → ← ↔ ⇒ ∀ ∃ ∅ ∈ ∑ ∏ ∫",
    "½ ¼ ¾ ² ³ ¹ ⁰ ⁴ ₁ ₂ Ⅻ ⅷ ① ⑳ ㊿",
]

INVISIBLE = [
    "\x00", "\x01", "\x07", "\x08", "\x1b", "\x1f", "\x7f", "\x80", "\x85", "\x9f",
    "\t", "\n", "\r", "\r\n", "\x0b", "\x0c", "\x1c", "\x1d", "\x1e",
    "\u00a0", "\u00ad", "\u034f", "\u061c", "\u1680", "\u180e", "\u2000", "\u2003", "\u2007",
    "\u200a", "\u200b", "\u200c", "\u200d", "\u200e", "\u200f", "\u2028", "\u2029", "\u202a",
    "\u202e", "\u202f", "\u205f", "\u2060", "\u2066", "\u3000", "\ufeff", "\ufe0f", "\ufffc",
    "\ufffd", "\ufffe", "\uffff", "\ue000", "\U000f0000", "\U0010ffff", "\u0378", "\U000e0041",
    "\U0001f8ff",
]

MARKS = [
    "e\u0301", "a\u0300\u0323", "o\u0308\u0304", "n\u0303", "c\u0327", "u\u031b\u0309",
    "Z\u0351\u036b\u0343\u036a\u0302\u036b\u033d\u034f\u0334\u0319\u0324\u031e\u0349\u035a",
    "x\U0001d16d\U0001d165y", "\U0001d15f\U0001d16d", "x\u302e\u1b44", "a\u0f73\u0f71b",
    "\u0915\u093c", "\u0958", "\u1100\u1161\u11a8", "\u0130", "\u0131", "\u1e9e", "\u00df",
    "\ufb01", "\ufb13", "\u2126", "\u212b", "\u212a", "\u01c4", "\u01c5", "\u1f88",
    "\u0345", "\u0344", "\u0300", "\ua7c0", "\U00016e40", "\u13a0", "\u1c90", "\u10a0",
    "\uff21\uff22\uff23", "\u2160", "\u24b6", "\U0001e900", "\U00010400",
]

CODE = [
    "def f(x):\n    return x ** 2  # square\n",
    "for (int i = 0; i < n; ++i) { sum += a[i]; }",
    "{\"key\": [1, 2.5, null, true], \"nested\": {\"a\": \"b\"}}",
    "SELECT name, COUNT(*) FROM users WHERE age >= 18 GROUP BY name;",
    "<a href=\"https://example.com/?q=1&amp;r=2\">link</a>",
    "^(?:[a-z0-9!#$%&'*+/=?^_`{|}~-]+)@example\\.com$",
    "git commit -m \"fix: handle CRLF\" && git push origin HEAD:main",
    "x = lambda *args, **kwargs: (args, kwargs)",
    "std::vector<std::pair<int, std::string>> v{{1, \"one\"}};",
    "| col1 | col2 |\n|------|------|\n| a    | b    |",
    "`inline code` and **bold** and _italic_ and ~~strike~~",
    "C:\\Users\\Name\\Documents\\file.txt and /usr/local/bin/python3",
    "0xDEADBEEF 0b1010 0o755 1e-9 6.02214076e23 NaN -Infinity",
]

SPECIAL = [
    "[CLS]", "[SEP]", "[PAD]", "[MASK]", "[UNK]", "[cls]", "[Sep]", "[ CLS ]", "[CLS",
    "CLS]", "[[CLS]]", "[CLS][SEP]", "x[MASK]y", "##", "##ing", "[unused1]", "[UNUSED1]",
    "<s>", "</s>", "<pad>", "<|endoftext|>",
]

WORDS = ("data model build image layer token vocabulary release test speed cache batch "
         "vector sentence embedding quantize precision latency throughput server").split()


def base_sentences():
    """Every hand-written sentence, in a fixed order."""
    return [s for group in SENTENCES.values() for s in group]


def variants(rng, sentences):
    """Texts made from the sentences: case, joins, punctuation, invisible characters."""
    out = []
    for s in sentences:
        out += [s, s.upper(), s.lower(), s.title(), s.swapcase()]
    for _ in range(120):
        a, b = rng.sample(sentences, 2)
        out.append(f"{a} {b}")
    for _ in range(80):
        s = rng.choice(sentences)
        at = rng.randrange(len(s) + 1)
        out.append(s[:at] + rng.choice(INVISIBLE) + s[at:])
    for _ in range(60):
        s = rng.choice(sentences)
        out.append(" ".join(rng.choice(EMOJI) if rng.random() < 0.3 else w for w in s.split()))
    for _ in range(60):
        s = rng.choice(sentences)
        at = rng.randrange(len(s) + 1)
        out.append(s[:at] + rng.choice(SPECIAL) + s[at:])
    for _ in range(40):
        s = rng.choice(sentences)
        out.append("".join(c + rng.choice(MARKS[:6])[1:] if c.isalpha() and rng.random() < 0.2
                           else c for c in s))
    return out


def pieces(rng):
    """Short texts of each awkward kind on its own and in small mixtures."""
    out = ["", " ", "   ", "\t", "\n", "\r\n", " \t\n\r ", "\u3000\u00a0\u2003", "\x00",
           "\x00\x01\x02", "\ufffd", "\ufeff", "\u200b\u200c\u200d"]
    out += EMOJI + [" ".join(EMOJI), "".join(EMOJI)]
    out += PUNCTUATION + ["".join(PUNCTUATION).replace(" ", "")]
    out += [f"a{c}b" for c in INVISIBLE] + ["".join(INVISIBLE)]
    out += MARKS + ["".join(MARKS)] + [f"word{m}word" for m in MARKS]
    out += CODE
    out += SPECIAL + [" ".join(SPECIAL), "".join(SPECIAL), f"{SPECIAL[0]} hello {SPECIAL[1]}"]
    for _ in range(100):
        n = rng.randint(1, 12)
        parts = [rng.choice(rng.choice((EMOJI, SPECIAL, INVISIBLE, MARKS, WORDS, PUNCTUATION)))
                 for _ in range(n)]
        out.append(rng.choice(("", " ")).join(parts))
    for _ in range(60):
        out.append("".join(chr(rng.randint(0x20, 0x2FFF)) for _ in range(rng.randint(1, 20))))
    for _ in range(40):
        code = rng.choice((rng.randint(0x3000, 0xFFFF), rng.randint(0x10000, 0x10FFFF)))
        if not 0xD800 <= code < 0xE000:
            out.append(f"x{chr(code)} {chr(code)}y")
    return out


def long_texts(rng, sentences):
    """Inputs over the 254-piece cut, words at the 100-character limit."""
    out = []
    for n in (9999, 10000, 10001, 12000, 25000):
        text = ""
        while len(text) < n:
            text += rng.choice(sentences) + " "
        out.append(text[:n])
    out.append("漢字" * 5000)
    out.append("😀" * 10000)
    out.append(" ".join(rng.choice(WORDS) for _ in range(3000)))
    out.append("\x00" * 10000 + "after ten thousand nulls")
    out.append(" " * 10000 + "after ten thousand spaces")
    out.append("[CLS]" * 300)
    out.append("a" * 300)
    out.append("abcdefghij" * 30)
    out.append("é" * 300)
    for n in (99, 100, 101):
        out += ["x" * n, "é" * n, "e\u0301" * n, "ab" * (n // 2) + "a" * (n % 2), "日" * n,
                "Ⅻ" * n]
    out.append("y" * 100 + "\u0301")
    out.append("\u00ad".join("z" * 60))
    # Around the cut: "a " gives one piece per word.
    for n in (252, 253, 254, 255, 256, 300):
        out.append("a " * n)
        out.append("a " * (n - 1) + "[SEP] b")
        out.append("a " * (n - 1) + "unbelievably")
    return out


def corpus(seed=15):
    """The whole corpus, deterministically, each text once."""
    rng = random.Random(seed)
    sentences = base_sentences()
    texts = sentences + variants(rng, sentences) + pieces(rng) + long_texts(rng, sentences)
    return list(dict.fromkeys(texts))


def main(argv):
    """Write the corpus to argv[1]."""
    if len(argv) != 2:
        print(f"usage: {argv[0]} OUTPUT.jsonl", file=sys.stderr)
        return 2
    texts = corpus()
    with open(argv[1], "w", encoding="ascii", newline="\n") as out:
        for text in texts:
            out.write(json.dumps(text, ensure_ascii=True) + "\n")
    print(f"{len(texts)} texts written to {argv[1]}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
