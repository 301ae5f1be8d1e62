"""The embeddings benchmark's parts, without starting a server or timing anything:
the requests both servers get, the figures derived from wrk's, the medians, the
ratio against the issue's target, the choice of the best settings, and the
command line."""

import json

import pytest

from bench import embeddings_service as bench


def test_typical_sentences_are_the_lines_of_6_to_30_words():
    lines = ["Hi.", "one two three four five six", " ".join(["w"] * 30),
             " ".join(["w"] * 31), "a b c d e"]
    assert bench.typical_sentences(lines) == lines[1:3]


def test_the_corpus_has_enough_typical_sentences():
    texts = bench.typical_sentences(bench.read_corpus())
    assert len(texts) >= 300
    assert all(6 <= len(t.split()) <= 30 for t in texts)


def test_bodies_send_every_text_in_turn_and_all_differ():
    texts = ["a b", "c d", "é f"]
    one = [json.loads(b) for b in bench.bodies(texts, 1)]
    assert one == [{"texts": [t]} for t in texts]
    sixteen = bench.bodies(texts, 16)
    assert len(set(sixteen)) == 3
    docs = [json.loads(b) for b in sixteen]
    assert all(len(d["texts"]) == 16 for d in docs)
    assert docs[1]["texts"][:4] == ["c d", "é f", "a b", "c d"]
    assert all(b.isascii() for b in sixteen), "wrk's Lua script carries bodies as literals"


def test_rates_count_texts_and_cpu_per_text():
    figures = {"requests": 100, "rps": 50.0}
    out = bench.with_rates(figures, cpu_s=3.2, per_request=16)
    assert out["texts_per_s"] == 800.0
    assert out["cpu_ms_per_text"] == pytest.approx(2.0)  # 3.2 s over 1,600 texts
    assert out["cpu_cores"] == pytest.approx(1.6)  # 3.2 s over 2 s
    assert out["rps"] == 50.0


def _f(rps, per_request=1):
    """Figures of a 10 s run at `rps` in which the server used 1 CPU second."""
    return bench.with_rates({"requests": int(rps * 10), "rps": rps, "p50_ms": 1.0,
                             "p99_ms": 2.0, "errors": 0, "non_2xx": 0}, 1.0, per_request)


def test_summary_is_the_median_of_the_rounds():
    runs = {(1, "ours"): [_f(100), _f(300), _f(200)]}
    assert bench.summarise(runs)[(1, "ours")]["rps"] == 200


def test_ratio_is_against_the_faster_peer_and_says_whether_the_target_is_met():
    results = {(1, "ours"): _f(300), (1, "pool"): _f(100), (1, "loop"): _f(50),
               (16, "ours"): _f(20, 16), (16, "pool"): _f(5, 16), (16, "loop"): _f(10, 16)}
    lines = bench.ratios(results, "ours", ["pool", "loop"])
    assert lines == ["- 1 text(s) per request: ours / peer throughput = 3.0x against pool "
                     "(meets the 3x target); server CPU per text, peer / ours = 3.0x",
                     "- 16 text(s) per request: ours / peer throughput = 2.0x against loop "
                     "(misses the 3x target); server CPU per text, peer / ours = 2.0x"]
    assert not bench.ratios({(1, "ours"): _f(300)}, "ours", ["pool"])


def test_best_settings_weigh_each_scenario_against_its_own_best():
    # a: best at 1 text/request by far; b: a little better at 16 (larger numbers).
    results = {(1, "a"): _f(1000), (16, "a"): _f(90, 16),
               (1, "b"): _f(500), (16, "b"): _f(100, 16)}
    assert bench.best_settings(results) == "a"


def test_table_has_a_row_per_scenario_and_server():
    table = bench.markdown({(1, "ours"): _f(300), (16, "ours"): _f(20, 16)})
    rows = table.splitlines()
    assert len(rows) == 4
    assert rows[2].startswith("| 1 | ours | 300.0 | 300 |")
    assert rows[3].startswith("| 16 | ours | 20.0 | 320 |")


def test_tune_grid_names_every_setting():
    names = {bench.tune_name(*settings) for settings in bench.TUNE_GRID}
    assert len(names) == len(bench.TUNE_GRID)
    assert "kernel=thread max_batch_size=16 max_batch_cost=default" in names


@pytest.mark.parametrize("argv", [["--rounds", "0"], ["--duration", "-1"], ["--only", "soak"],
                                  ["--peer-modes", "gpu"], ["--peer-modes", "loop,loop"]])
def test_bad_arguments_are_usage_errors(argv, capsys):
    with pytest.raises(SystemExit) as exit_info:
        bench.parse_args(argv)
    assert exit_info.value.code == 2
    assert "error:" in capsys.readouterr().err


def test_defaults_compare_with_the_peer_then_tune():
    args = bench.parse_args([])
    assert (args.only, args.peer, args.rounds) == (None, True, 3)
    assert args.peer_modes == ["threadpool"]
    assert bench.parse_args(["--no-peer", "--only", "tune"]).peer is False
    assert bench.parse_args(["--peer-modes", "loop,threadpool"]).peer_modes == [
        "loop", "threadpool"]


def test_a_missing_reference_venv_names_the_folder_and_the_fix(tmp_path):
    with pytest.raises(bench.Failure) as failure:
        bench.check_reference_venv(str(tmp_path / "nope"))
    message = str(failure.value)
    assert str(tmp_path / "nope") in message
    assert "third_party/python/README.md" in message and "--no-peer" in message
