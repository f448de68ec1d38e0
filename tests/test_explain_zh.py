"""`rnnlab shapes|explain --lang zh`: the same numbers as the English output, every sentence in Chinese."""

from __future__ import annotations

import re

import pytest

from rnnlab.explain import main, translate
from rnnlab.explain._zh import resolve_lang

pytestmark = pytest.mark.usefixtures("one_thread", "english_locale")

FLOAT = re.compile(r"-?\d+\.\d+(?:e[+-]\d+)?")
# Words of the English output that a Chinese reader must never be left with (symbols such as h_prev, W_ii,
# input_size or the table's row names are code and stay as they are).
ENGLISH = re.compile(
    r"\b(gate|gates|state|sequences?|steps?|expected|dimensions?|matches|note|padding|packed|batch of|"
    r"time steps|directions|the layer|unbatched|must be|given twice|needs)\b"
)
COMMANDS = [
    "shapes RNN input_size=5 hidden_size=6 --input 1,3,5 --h0 1,3,6",
    "shapes LSTM input_size=5 hidden_size=6 num_layers=2 bidirectional=true batch_first=true proj_size=3",
    "shapes GRU input_size=5 hidden_size=6 --input 4,5",
    "shapes LSTMCell input_size=5 hidden_size=6",
    "shapes GRUCell input_size=5 hidden_size=6 --input 5",
    "explain LSTM",
    "explain GRU --seed 3 --hidden-size 4",
    "explain RNN --nonlinearity relu",
    "explain GRU --lengths 3,1,2",
    "explain RNN --lengths 12,1,5,5,2,1,3,4,4,2,7",
]
ERRORS = [
    "shapes LSTM input_size=5 hidden_size=6 num_layers=2 --input 3,1,5 --h0 1,1,6",
    "shapes GRU input_size=5 hidden_size=6 batch_first=true --input 2,4,5 --h0 1,4,6",
    "shapes LSTM input_size=5 hidden_size=6 --input 5",
    "shapes LSTM input_size=5 hidden_size=6 --input 3,2,4",
    "shapes LSTM input_size=5 hidden_size=6 --input 3,2,5 --h0 1,2,6,1",
    "shapes RNNCell input_size=5 hidden_size=6 --input 2,3,5",
    "shapes LSTM input_size=5",
    "shapes GRU input_size=5 hidden_size=6 --c0 1,2,6",
    "shapes LSTM input_size=5 hidden_size=6 hidden_size=7",
    "shapes LSTM input_size=5 hidden_size=6 --input 3,x",
    "explain RNN --input-size 9",
    "explain LSTM --lengths 3,0",
    "explain LSTM --lengths 41",
]


@pytest.fixture
def english_locale(monkeypatch):
    for name in ("LC_ALL", "LC_MESSAGES"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("LANG", "C.UTF-8")


def run(capsys, command: str, *extra: str) -> tuple[int, str]:
    code = main([*command.split(), *extra])
    captured = capsys.readouterr()
    return code, captured.out + captured.err


@pytest.mark.parametrize("command", COMMANDS)
def test_same_numbers_every_sentence_chinese(capsys, command):
    code_en, english = run(capsys, command)
    code_zh, chinese = run(capsys, command, "--lang", "zh")
    assert code_en == code_zh == 0
    assert FLOAT.findall(chinese) == FLOAT.findall(english)  # translation never touches a number
    assert chinese.count("\n") == english.count("\n")
    leftover = [line for line in chinese.splitlines() if ENGLISH.search(line)]
    assert not leftover, "untranslated lines:\n" + "\n".join(leftover)
    assert chinese == translate(english, "zh")


def test_gate_names_are_the_textbook_terms(capsys):
    _, lstm = run(capsys, "explain LSTM", "--lang", "zh")
    for gate, name in (("i", "输入门"), ("f", "遗忘门"), ("g", "候选记忆"), ("o", "输出门")):
        assert re.search(rf"(?m)^{gate} = \w+\(W_i{gate} x .*\)    {name}，第 \d+-\d+ 行$", lstm), gate
    _, gru = run(capsys, "explain GRU", "--lang", "zh")
    assert "重置门" in gru and "更新门" in gru and "候选状态" in gru
    assert "W_hn (r * h_prev)" in gru and "Cho 等人" in gru  # the note on torch's reset gate survives
    assert gru.splitlines()[-1].startswith("与这一层的输出一致：max |difference| = ")


@pytest.mark.parametrize("command", ERRORS)
def test_error_sentences_in_chinese_exit_2(capsys, command):
    code_en, english = run(capsys, command)
    code_zh, chinese = run(capsys, command, "--lang", "zh")
    assert code_en == code_zh == 2
    assert english.startswith("rnnlab: error: ") and chinese.startswith("rnnlab: error: ")
    sentence = chinese.removeprefix("rnnlab: error: ")
    assert re.search(r"[\u4e00-\u9fff]", sentence), chinese
    assert not ENGLISH.search(sentence), chinese
    # The same numbers, in Chinese word order ("h0 的第 0 维是 1" for "h0 has 1 in dimension 0").
    numbers = sorted(re.findall(r"\d+", english.removeprefix("rnnlab: error: ")))
    assert sorted(re.findall(r"\d+", sentence)) == numbers


def test_the_notes_mistake_is_named_in_chinese(capsys):
    code, text = run(capsys, ERRORS[1], "--lang", "zh")
    assert code == 2
    assert text == (
        "rnnlab: error: h0 的第 1 维是 4（B = batch，一批里的序列数），应该是 2："
        "4 是输入的 T（时间步数），而 h0 是每条序列一个状态，不是每个时间步一个。\n"
    )


def test_the_locale_chooses_and_lang_overrides(capsys, monkeypatch):
    _, english = run(capsys, "explain RNN")
    _, chinese = run(capsys, "explain RNN", "--lang", "zh")
    assert english != chinese
    monkeypatch.setenv("LANG", "zh_CN.UTF-8")
    assert run(capsys, "explain RNN") == (0, chinese)
    assert run(capsys, "explain RNN", "--lang", "en") == (0, english)
    monkeypatch.setenv("LC_ALL", "en_US.UTF-8")  # LC_ALL outranks LANG, as POSIX has it
    assert run(capsys, "explain RNN") == (0, english)


def test_resolve_lang():
    assert resolve_lang(None, {}) == "en"
    assert resolve_lang(None, {"LANG": "zh_TW.UTF-8"}) == "zh"
    assert resolve_lang(None, {"LC_MESSAGES": "zh_CN", "LANG": "en_GB"}) == "zh"
    assert resolve_lang(None, {"LC_ALL": "C", "LC_MESSAGES": "zh_CN"}) == "en"
    assert resolve_lang("en", {"LANG": "zh_CN"}) == "en"
    with pytest.raises(ValueError, match=r"lang: expected one of en, zh, received 'fr'"):
        resolve_lang("fr")
    assert translate("anything", "en") == "anything"


def test_the_full_command_line_takes_lang(capsys):
    from rnnlab import cli

    assert cli.main(["explain", "LSTM", "--lang", "zh"]) == 0
    assert "遗忘门" in capsys.readouterr().out
    assert cli.main(["shapes", "GRU", "--lang", "zh", "input_size=5", "hidden_size=6", "--h0", "2,2,6"]) == 2
    assert capsys.readouterr().err.startswith("rnnlab: error: h0 的第 0 维是 2")
