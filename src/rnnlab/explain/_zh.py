"""``--lang zh``: what ``rnnlab shapes`` and ``rnnlab explain`` print, in Chinese, for the notes' readers.

The English text is built first, from the real tensors, and only its words are rewritten here, line by line,
by the ordered patterns below: the numbers, shapes and symbols (``W_ii``, ``h_prev``, ``D*L``) pass through
untouched, so the Chinese output can never show a value the English one does not. Gate names follow the
usual Chinese textbook terms (输入门, 遗忘门, 候选记忆, 输出门; 重置门, 更新门). The ``rnnlab: error:`` prefix
stays as it is (scripts grep for it); the sentence after it is translated. Messages that quote torch's own
error text keep torch's words, which are English.

Which language: ``--lang en|zh``, else the locale (``LC_ALL``, then ``LC_MESSAGES``, then ``LANG``, the first
one set, as POSIX reads them): Chinese when it starts with ``zh``.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping

__all__ = ["LANGS", "resolve_lang", "translate"]

LANGS = ("en", "zh")

# What each legend name means, in the error sentences ("h0 has 1 in dimension 0 (D*L = ...)").
_MEANING = {
    "T = time steps": "T = 时间步数",
    "B = batch": "B = batch，一批里的序列数",
    "D*L = num_layers * directions": "D*L = 层数 × 方向数",
    "D*H = directions * hidden_size": "D*H = 方向数 × hidden_size",
    "D*P = directions * proj_size": "D*P = 方向数 × proj_size",
    "3*H = the three GRU gates stacked": "3*H = GRU 的三个门上下堆叠",
    "4*H = the four LSTM gates stacked": "4*H = LSTM 的四个门上下堆叠",
}
_MEANINGS = "|".join(re.escape(m) for m in _MEANING)


def _meaning(match: re.Match) -> str:
    return _MEANING.get(match.group(0), match.group(0))


# (pattern, replacement), tried in order on every line; a replacement may be a function of the match.
_LINES: list[tuple[re.Pattern, object]] = [
    (re.compile(p), r)
    for p, r in [
        # --- rnnlab shapes: the table ---
        (r"^parameters$", "参数（parameters）"),
        (r"^expects$", "需要的输入（expects）"),
        (r"^returns$", "返回（returns）"),
        (r"time steps \(the input's dimension (\d)\)$", r"时间步数（输入的第 \1 维）"),
        (r"batch \(the input's dimension (\d)\)$", r"batch，一批里的序列数（输入的第 \1 维）"),
        (r"directions \(2 if bidirectional\)$", "方向数（双向时为 2）"),
        (
            r"^note: batch_first=False: the input is \(T, B, H_in\), "
            r"time first; batch_first=True: \(B, T, H_in\)$",
            "注意：batch_first=False 时输入是 (T, B, H_in)，时间在前；batch_first=True 时才是 (B, T, H_in)",
        ),
        (
            r"^note: (.*): one state per layer and direction for each sequence; no T dimension$",
            r"注意：\1：每层、每个方向给每条序列一个状态，没有 T 这一维",
        ),
        (
            r"^note: unbatched input \(T, H_in\): one sequence, so the states lose their B dimension too$",
            "注意：不带 batch 维的输入 (T, H_in) 只是一条序列，所以状态也没有 B 这一维",
        ),
        (
            r"^note: a cell takes one time step: its input has no T dimension$",
            "注意：Cell 一次只走一个时间步，所以它的输入没有 T 这一维",
        ),
        # --- the error sentences (after "rnnlab: error: ") ---
        (
            rf"(\S+) has (\d+) in dimension (\d+) \(({_MEANINGS}|H_in = input_size)\), expected (\d+)",
            lambda m: f"{m[1]} 的第 {m[3]} 维是 {m[2]}（{_MEANING.get(m[4], m[4])}），应该是 {m[5]}",
        ),
        (
            r": (\d+) is the input's T \(time steps\), but (\S+) "
            r"holds one state per sequence, not one per step\.$",
            r"：\1 是输入的 T（时间步数），而 \2 是每条序列一个状态，不是每个时间步一个。",
        ),
        (
            r"^rnnlab: error: input has (\d+) dimensions (\(.*?\)), expected (\d) \((.*?)\) or (\d) for one "
            r"unbatched (sequence|sample) \((.*?)\)\.$",
            lambda m: (
                f"rnnlab: error: input 有 {m[1]} 维 {m[2]}，应该是 {m[3]} 维 ({m[4]})，"
                f"或者 {m[5]} 维：不带 batch 的一条{'序列' if m[6] == 'sequence' else '样本'} ({m[7]})。"
            ),
        ),
        (
            r"^rnnlab: error: (\S+) has (\d+) dimensions (\(.*?\)), expected (\d+): ",
            r"rnnlab: error: \1 有 \2 维 \3，应该是 \4 维：",
        ),
        (r"^rnnlab: error: the layer rejected the state: ", "rnnlab: error: 这一层不接受这个状态："),
        (
            r"^rnnlab: error: the layer rejected an input of shape (\(.*?\)): ",
            r"rnnlab: error: 这一层不接受形状为 \1 的输入：",
        ),
        (
            r"^rnnlab: error: (\w+) needs (.*?), e\.g\. input_size=5 hidden_size=6$",
            r"rnnlab: error: \1 需要 \2，例如 input_size=5 hidden_size=6",
        ),
        (r"^rnnlab: error: (.*?) cannot be built: ", r"rnnlab: error: 无法构造 \1："),
        (
            r"^rnnlab: error: --c0 is only for LSTM and LSTMCell; (\w+) has no cell state$",
            r"rnnlab: error: --c0 只用于 LSTM 和 LSTMCell；\1 没有记忆（细胞状态）",
        ),
        (
            r"^rnnlab: error: (--\S+) must be between (\d+) and (\d+) \(a tiny layer\), got (\S+)$",
            r"rnnlab: error: \1 必须在 \2 到 \3 之间（一个很小的层），收到的是 \4",
        ),
        (
            r"^rnnlab: error: (--\S+) must be (positive whole numbers|sizes) "
            r"separated by commas, like 3,1,2; got (.*)$",
            lambda m: (
                f"rnnlab: error: {m[1]} 必须是用逗号分隔的{'正整数' if m[2].startswith('p') else '大小'}，"
                f"比如 3,1,2；收到的是 {m[3]}"
            ),
        ),
        (
            r"^rnnlab: error: --lengths: at most (\d+) sequences of at most (\d+) steps$",
            r"rnnlab: error: --lengths：最多 \1 条序列，每条最多 \2 步",
        ),
        (
            r"^rnnlab: error: constructor arguments are key=value pairs like hidden_size=6; got (.*)$",
            r"rnnlab: error: 构造参数要写成 key=value，比如 hidden_size=6；收到的是 \1",
        ),
        (r"^rnnlab: error: (\w+) is given twice$", r"rnnlab: error: \1 给了两次"),
        (r"^(rnnlab: error: .*)\.$", r"\1。"),
        # --- rnnlab explain: one step ---
        (
            r"^(\w+): one time step of (rnnlab\.nn\.\S+\(.*?\)), seed (\d+) \(H_in = (\d+), H = (\d+), one "
            r"sequence: B = 1\)$",
            r"\1：\2 的一个时间步，种子 \3（H_in = \4，H = \5，只有一条序列：B = 1）",
        ),
        (
            r"^The equations of rnnlab/nn/functional\.py, (\w+\(\)), with the numbers substituted\.$",
            r"rnnlab/nn/functional.py 里 \1 的公式，把真实的数字代进去。",
        ),
        (
            r'^"W x" is a matrix-vector product, "\*" multiplies element by element\.$',
            '"W x" 是矩阵乘向量，"*" 是逐元素相乘。',
        ),
        (
            r"^The weights are the layer's own: (weight_ih_l0 \(.*?\)) and (weight_hh_l0 \(.*?\))[,.]$",
            lambda m: f"权重就是这一层自己的：{m[1]} 和 {m[2]}" + ("，" if m[0].endswith(",") else "。"),
        ),
        (r"^  the gates stacked in the order (.*)\.$", r"  各门按 \1 的顺序上下堆叠。"),
        (r"    input gate, rows (\d+)-(\d+)$", r"    输入门，第 \1-\2 行"),
        (r"    forget gate, rows (\d+)-(\d+)$", r"    遗忘门，第 \1-\2 行"),
        (r"    candidate cell state, rows (\d+)-(\d+)$", r"    候选记忆，第 \1-\2 行"),
        (r"    output gate, rows (\d+)-(\d+)$", r"    输出门，第 \1-\2 行"),
        (r"    reset gate, rows (\d+)-(\d+)$", r"    重置门，第 \1-\2 行"),
        (r"    update gate, rows (\d+)-(\d+)$", r"    更新门，第 \1-\2 行"),
        (r"    candidate state, rows (\d+)-(\d+)$", r"    候选状态，第 \1-\2 行"),
        (r"    the new cell state$", "    新的记忆（细胞状态）"),
        (r"    the new hidden state$", "    新的隐藏状态"),
        (
            r"^      \^ the reset gate multiplies here, AFTER the "
            r"product W_hn h_prev and its bias: torch\.nn's GRU$",
            "      ^ 重置门乘在这里：在 W_hn h_prev 加上偏置之后。torch.nn 的 GRU",
        ),
        (
            r"^        \(and cuDNN's\)\. Cho et al\. \(2014\) apply "
            r"it before the product: W_hn \(r \* h_prev\)\.$",
            "        （和 cuDNN）都这样算；Cho 等人 2014 年的论文乘在矩阵乘法之前：W_hn (r * h_prev)。",
        ),
        (r"^the layer itself, (.*):$", r"这一层自己算出的结果，\1："),
        (
            r"^matches the layer's output: (max \|difference\| = \S+) \(over (h|h and c)\)$",
            lambda m: f"与这一层的输出一致：{m[1]}（比较 {m[2].replace(' and ', ' 和 ')}）",
        ),
        (
            r"^DOES NOT match the layer's output: (max \|difference\| = \S+) \(over (h|h and c)\)$",
            lambda m: f"与这一层的输出不一致！{m[1]}（比较 {m[2].replace(' and ', ' 和 ')}）",
        ),
        # --- rnnlab explain --lengths: the packed batch ---
        (
            r"^(\w+): a packed batch of (\d+) sequences of lengths "
            r"(.*?) \(B = (\d+), T = (\d+)\), (.*), seed (\d+)$",
            r"\1：打包的一批 \2 条序列，长度 \3（B = \4，T = \5），\6，种子 \7",
        ),
        # The grid keeps its columns: "序列" and "时间步" are as wide on a terminal as what they replace.
        (r"^step t  ", "时间步 t"),
        (
            r"^sequence (\d+)(\s+)(.*)    length (\d+)$",
            lambda m: f"序列 {m[1]}{m[2]}    {m[3]}    长度 {m[4]}",
        ),
        (
            r"^\(# = a step the layer computed, \. = padding, never computed\)$",
            "（# = 这一层算过的步，. = 补齐的位置，从没算过）",
        ),
        (r"^the PackedSequence: (.*), (sorted_indices = .*)$", r"PackedSequence：\1，\2"),
        (
            r"^\(the sequences sorted longest first; at step t the "
            r"layer runs on the first batch_sizes\[t\] of them\)$",
            "（各序列按长度从长到短排好；第 t 步只算排在前面的 batch_sizes[t] 条）",
        ),
        (r"^  step (\d+): a batch of (\d+), sequences? (.*)$", r"  第 \1 步：\2 条一起算，序列 \3"),
        (
            r"^padding filled with NaN before packing: no NaN in "
            r"the output or h_n, so no padding entered a step$",
            "打包前把补齐的位置填成 NaN：输出和 h_n 里一个 NaN 也没有，所以补齐的位置从没参与计算",
        ),
        (
            r"^padding filled with NaN before packing: NaN REACHED THE OUTPUT$",
            "打包前把补齐的位置填成 NaN：NaN 进入了输出！",
        ),
        (
            r"^h_n of the packed run against each sequence run alone on its own length:$",
            "打包运行的 h_n，和每条序列按自己的长度单独运行相比：",
        ),
        (r"^  sequence (\d+) \((\d+) steps?\): ", r"  序列 \1（\2 步）："),
        (
            r"^without packing \(padding as zeros, run for all "
            r"(\d+) steps\), h_n of the shorter ones differs:$",
            r"不打包时（补齐的位置填 0，全部跑 \1 步），较短序列的 h_n 就不同了：",
        ),
        (r"^  sequence (\d+): ", r"  序列 \1："),
        (r"^packed run matches each sequence run alone: ", "打包运行和每条序列单独运行一致："),
        (r"^packed run DOES NOT match each sequence run alone: ", "打包运行和每条序列单独运行不一致！"),
    ]
]


def resolve_lang(lang: str | None = None, environ: Mapping[str, str] | None = None) -> str:
    """``lang`` when given (``"en"`` or ``"zh"``), else ``"zh"`` under a Chinese locale, else ``"en"``."""
    if lang is not None:
        if lang not in LANGS:
            raise ValueError(f"lang: expected one of {', '.join(LANGS)}, received {lang!r}")
        return lang
    environ = os.environ if environ is None else environ
    for name in ("LC_ALL", "LC_MESSAGES", "LANG"):
        if environ.get(name):
            return "zh" if environ[name].lower().startswith("zh") else "en"
    return "en"


def translate(text: str, lang: str) -> str:
    """``text`` as ``rnnlab shapes`` / ``rnnlab explain`` print it, in ``lang`` (``"en"``: unchanged)."""
    if resolve_lang(lang) == "en":
        return text
    lines = []
    for line in text.split("\n"):
        for pattern, replacement in _LINES:
            line = pattern.sub(replacement, line)
        lines.append(line)
    return "\n".join(lines)
