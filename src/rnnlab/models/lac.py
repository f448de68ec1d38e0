r"""Baidu's LAC tagger (lexical analysis of Chinese), the small model jieba 0.42.1 ships in
``jieba/lac_small``, as rnnlab modules: its 20,941 x 128 character embeddings and its 2-layer BiGRU (128 a
direction) loaded into :class:`rnnlab.nn.ChoGRU`, with its emission layer and CRF transitions on top.

The files (``model_baseline/``) are Paddle LoDTensors: ``uint32`` version, ``uint64`` LoD level (0 here),
``uint32`` tensor version, ``int32`` length of a ``TensorDesc`` protobuf (field 1 the data type, 5 =
float32; field 2 the dims), then the raw little-endian values (:func:`read_paddle_tensor`). The network
(jieba's ``lac_small/nets.py``) is, per layer and direction, a fully connected layer to 3H
(``fc_k.w_0`` (H_in, 3H), ``fc_k.b_0``) feeding Paddle's ``dynamic_gru`` (``gru_k.w_0``, ``gru_k.b_0``);
``k`` counts layer 1 forward, layer 1 reverse, layer 2 forward, layer 2 reverse; then ``fc_4`` (2H -> 57
tags) and ``crfw`` ((57 + 2) x 57: start scores, end scores, then ``transition[from, to]``).

Paddle's GRU, found by reading the layout off the files and confirmed by the tags it gives (a wrong layout
gives nonsense: see tests/models/test_lac.py):

.. math::
    u_t &= \sigma(x^u_t + W_{uh}^T h_{t-1} + b_u), \quad r_t = \sigma(x^r_t + W_{rh}^T h_{t-1} + b_r) \\
    c_t &= \tanh(x^c_t + W_{ch}^T (r_t \odot h_{t-1}) + b_c) \\
    h_t &= (1 - u_t) \odot h_{t-1} + u_t \odot c_t

with the input projection ``x_t = fc(x)`` split (u, r, c), the bias (u, r, c), and the weight stored as
*flat memory* holding an (H, 2H) block for (u, r) followed by an (H, H) block for c (not the columns of an
(H, 3H) matrix). That is Cho et al.'s GRU (:func:`rnnlab.nn.cho_gru.cho_gru`) with torch's gate order
(r, z, n) and ``z = 1 - u``, so the update gate's weights and biases change sign:
``z_t = \sigma(-(\ldots))``.

Unknown characters map to LAC's ``OOV`` entry, as jieba's reader does. LAC is Baidu's (Apache-2.0
headers in jieba's copy of the Paddle code; jieba itself is MIT).

Dimension legend: B batch, T time, E = 128 embedding size, H = 128 hidden size, C = 57 tags.
"""

from __future__ import annotations

import importlib.util
import struct
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import torch
from torch import Tensor, nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from rnnlab.data.text import PAD, UNK
from rnnlab.nn.cho_gru import ChoGRU

__all__ = ["lac_folder", "read_paddle_tensor", "LacTagger", "load_lac", "lac_embeddings_for", "viterbi"]

VOCAB_SIZE = 20941  # word.dic's ids run 0..20940 (20939 is unused)
EMBEDDING_DIM = HIDDEN_SIZE = 128
NUM_TAGS = 57
OOV = "OOV"  # the entry every unknown character maps to (jieba's lac_small/reader_small.py)
_PADDLE_FP32 = 5


def lac_folder() -> Path:
    """jieba's ``lac_small`` folder; ImportError naming the package when jieba is not installed."""
    spec = importlib.util.find_spec("jieba")
    if spec is None or spec.origin is None:
        raise ImportError(
            "rnnlab.models.lac needs jieba 0.42.1 (the tasks extra: pip install 'rnnlab[tasks]')"
        )
    folder = Path(spec.origin).parent / "lac_small"
    if not (folder / "model_baseline" / "word_emb").is_file():
        raise FileNotFoundError(f"jieba: expected its LAC model in {folder.name}/model_baseline, not found")
    return folder


def _varint(buf: bytes, i: int) -> tuple[int, int]:
    value, shift = 0, 0
    while True:
        byte = buf[i]
        i += 1
        value |= (byte & 0x7F) << shift
        shift += 7
        if byte < 0x80:
            return value, i


def read_paddle_tensor(path: str | Path) -> Tensor:
    """One Paddle LoDTensor file (LoD level 0, float32) as a float32 tensor of its dims."""
    buf = Path(path).read_bytes()
    if len(buf) < 20:
        raise ValueError(
            f"path: expected a Paddle tensor file, received {len(buf)} bytes ({Path(path).name})"
        )
    _, lod_level = struct.unpack_from("<IQ", buf, 0)
    if lod_level != 0:
        raise ValueError(f"path: expected LoD level 0, received {lod_level} ({Path(path).name})")
    _, desc_size = struct.unpack_from("<Ii", buf, 12)
    desc, i, dtype, dims = buf[20 : 20 + desc_size], 0, None, []
    while i < len(desc):  # TensorDesc: field 1 data_type (varint), field 2 dims (repeated int64)
        key = desc[i]
        value, i = _varint(desc, i + 1)
        if key == 0x08:
            dtype = value
        elif key == 0x10:
            dims.append(value)
        else:
            raise ValueError(f"path: unexpected field {key:#x} in the tensor header ({Path(path).name})")
    if dtype != _PADDLE_FP32:
        raise ValueError(f"path: expected float32 (Paddle type 5), received type {dtype} ({Path(path).name})")
    data = np.frombuffer(buf, dtype="<f4", offset=20 + desc_size)
    if data.size != int(np.prod(dims)):
        raise ValueError(f"path: header says {dims}, the file holds {data.size} values ({Path(path).name})")
    return torch.from_numpy(data.reshape(dims).copy())


def _read_vocab(folder: Path) -> dict[str, int]:
    """``word.dic`` (id<TAB>character per line) as character -> id."""
    vocab = {}
    for line in (folder / "word.dic").read_text(encoding="utf-8").split("\n"):
        parts = line.split("\t")
        if len(parts) == 2:
            vocab[parts[1]] = int(parts[0])
    return vocab


def _read_tags(folder: Path) -> list[str]:
    rows = [line.split("\t") for line in (folder / "tag.dic").read_text(encoding="utf-8").splitlines()]
    return [tag for _, tag in sorted((int(i), tag) for i, tag in rows)]


def _paddle_gru_to_cho(W_fc: Tensor, b_fc: Tensor, W_gru: Tensor, b_gru: Tensor) -> dict[str, Tensor]:
    """One direction's fc + dynamic_gru as ChoGRU weights (see the module docstring).

    ``W_fc`` (H_in, 3H) and ``b_fc`` (3H,) columns (u, r, c); ``W_gru`` (H, 3H) whose flat memory is an
    (H, 2H) block for (u, r) then an (H, H) block for c; ``b_gru`` (1, 3H). Returns ``weight_ih`` (3H, H_in),
    ``weight_hh`` (3H, H), ``bias_ih``, ``bias_hh`` (3H,), gates (r, z = 1 - u, n).
    """
    H = W_gru.shape[0]
    flat = W_gru.reshape(-1)
    W_g = flat[: 2 * H * H].reshape(H, 2 * H)  # (H, 2H): h @ W_g = [u | r] pre-activations
    W_c = flat[2 * H * H :].reshape(H, H)  # (H, H): (r * h) @ W_c
    b_fc, b_gru = b_fc.reshape(-1), b_gru.reshape(-1)

    def rzn(u: Tensor, r: Tensor, n: Tensor) -> Tensor:  # torch's order, z = 1 - u: sigma(-a) = 1 - sigma(a)
        return torch.cat([r, -u, n], dim=0)

    return {
        "weight_ih": rzn(W_fc[:, :H].T, W_fc[:, H : 2 * H].T, W_fc[:, 2 * H :].T),  # (3H, H_in)
        "weight_hh": rzn(W_g[:, :H].T, W_g[:, H:].T, W_c.T),  # (3H, H)
        "bias_ih": rzn(b_fc[:H], b_fc[H : 2 * H], b_fc[2 * H :]),  # (3H,)
        "bias_hh": rzn(b_gru[:H], b_gru[H : 2 * H], b_gru[2 * H :]),  # (3H,)
    }


def viterbi(emissions: Tensor, start: Tensor, end: Tensor, transitions: Tensor) -> list[int]:
    """The best tag path of one sequence: ``emissions`` (T, C), ``start``, ``end`` (C,), ``transitions``
    (C, C) indexed ``[from, to]`` -> T tag ids (Paddle's ``crf_decoding``)."""
    score = start + emissions[0]  # (C,)
    back = []
    for t in range(1, emissions.shape[0]):
        total = score.unsqueeze(1) + transitions  # (C_from, C_to)
        score, best = total.max(dim=0)
        score = score + emissions[t]
        back.append(best)
    path = [int((score + end).argmax())]
    for best in reversed(back):
        path.append(int(best[path[-1]]))
    return path[::-1]


class LacTagger(nn.Module):
    """LAC: ``embedding`` (V, E) -> ``encoder`` (ChoGRU(E, H, 2, bidirectional)) -> ``emission`` (2H -> C)
    -> CRF (``start``, ``end`` (C,), ``transitions`` (C, C) buffers). Built empty; :func:`load_lac` fills it.

    ``vocab`` maps characters to ids (unknown ones to ``OOV``); ``tags`` are the C tag names
    (``n-B``, ``LOC-I``, ...).
    """

    def __init__(self, vocab: Mapping[str, int], tags: Sequence[str]) -> None:
        super().__init__()
        self.vocab, self.tags = dict(vocab), list(tags)
        self.embedding = nn.Embedding(VOCAB_SIZE, EMBEDDING_DIM)
        self.encoder = ChoGRU(EMBEDDING_DIM, HIDDEN_SIZE, num_layers=2, batch_first=True, bidirectional=True)
        self.emission = nn.Linear(2 * HIDDEN_SIZE, len(self.tags))
        C = len(self.tags)
        self.register_buffer("start", torch.zeros(C))
        self.register_buffer("end", torch.zeros(C))
        self.register_buffer("transitions", torch.zeros(C, C))

    def encode(self, text: str) -> list[int]:
        """The characters of ``text`` as LAC ids (whitespace kept, as LAC reads it)."""
        oov = self.vocab[OOV]
        return [self.vocab.get(ch, oov) for ch in text]

    def features(self, ids: Tensor, lengths: Tensor | None = None) -> Tensor:
        """The BiGRU's hidden states: ``ids`` (B, T) int64, ``lengths`` (B,) or None -> (B, T, 2H), forward
        direction first, zero past each length (each sequence's reverse direction starts at its own end)."""
        x = self.embedding(ids)  # (B, T, E)
        if lengths is None:
            return self.encoder(x)[0]  # (B, T, 2H)
        packed = pack_padded_sequence(x, lengths.cpu(), batch_first=True, enforce_sorted=False)
        return pad_packed_sequence(self.encoder(packed)[0], batch_first=True, total_length=ids.shape[1])[0]

    def forward(self, ids: Tensor, lengths: Tensor | None = None) -> Tensor:
        """Emission scores (B, T, C) of each character's tag."""
        return self.emission(self.features(ids, lengths))

    @torch.no_grad()
    def tag(self, text: str) -> list[str]:
        """One tag name per character of ``text`` (CRF Viterbi decoding)."""
        if not text:
            return []
        emissions = self(torch.tensor([self.encode(text)]))[0]  # (T, C)
        return [self.tags[i] for i in viterbi(emissions, self.start, self.end, self.transitions)]

    def segment(self, text: str) -> list[tuple[str, str]]:
        """``text`` cut into (word, tag) pairs: a word starts at each ``-B`` tag (or a tag change)."""
        words: list[tuple[str, str]] = []
        for ch, tag in zip(text, self.tag(text), strict=True):
            label, _, part = tag.partition("-")
            if words and part == "I" and words[-1][1] == label:
                words[-1] = (words[-1][0] + ch, label)
            else:
                words.append((ch, label))
        return words


def load_lac(folder: str | Path | None = None) -> LacTagger:
    """LAC's weights from jieba's ``lac_small`` (or ``folder``) in a :class:`LacTagger`, in eval mode."""
    folder = lac_folder() if folder is None else Path(folder)
    params = folder / "model_baseline"
    model = LacTagger(_read_vocab(folder), _read_tags(folder))
    state = {"embedding.weight": read_paddle_tensor(params / "word_emb")}
    for layer in range(2):
        for direction in range(2):
            k = 2 * layer + direction
            weights = _paddle_gru_to_cho(*(read_paddle_tensor(params / name) for name in (
                f"fc_{k}.w_0", f"fc_{k}.b_0", f"gru_{k}.w_0", f"gru_{k}.b_0")))  # fmt: skip
            suffix = f"_l{layer}" + ("_reverse" if direction else "")
            state.update({f"encoder.{name}{suffix}": value for name, value in weights.items()})
    state["emission.weight"] = read_paddle_tensor(params / "fc_4.w_0").T  # (C, 2H)
    state["emission.bias"] = read_paddle_tensor(params / "fc_4.b_0").reshape(-1)  # (C,)
    crf = read_paddle_tensor(params / "crfw")  # (C + 2, C)
    state.update(start=crf[0], end=crf[1], transitions=crf[2:])
    model.load_state_dict(state, strict=True)
    return model.eval()


def lac_embeddings_for(
    tokens: Sequence[str],
    lac: LacTagger | None = None,
    *,
    counts: Mapping[str, int] | None = None,
    generator: torch.Generator | None = None,
) -> tuple[Tensor, float]:
    """An embedding matrix for an rnnlab vocabulary, rows taken from LAC where it knows the character.

    Args:
        tokens: the vocabulary's tokens in id order (``Vocab.tokens``: ``<pad>``, ``<unk>``, then the rest).
        lac: a loaded :class:`LacTagger` (default: :func:`load_lac`).
        counts: token counts; given, the coverage is weighted by them (the share of the text's characters
            LAC knows), else it is the share of the vocabulary's tokens.
        generator: for the fresh rows.

    Returns:
        ``(weight, coverage)``: ``weight`` (len(tokens), 128) float32, ``<pad>``'s row zero, ``<unk>``'s LAC's
        ``OOV`` row, a character LAC lacks a fresh row drawn from N(0, s^2) with ``s`` the standard deviation
        of LAC's own embedding values; ``coverage`` in [0, 1] over the tokens other than ``<pad>`` and
        ``<unk>`` (0.0 if there are none).
    """
    if isinstance(tokens, str) or not all(isinstance(t, str) for t in tokens):
        raise TypeError(
            "tokens: expected a sequence of str (a Vocab's .tokens), received " + type(tokens).__name__
        )
    lac = load_lac() if lac is None else lac
    table = lac.embedding.weight.detach()  # (VOCAB_SIZE, E)
    weight = torch.randn(len(tokens), table.shape[1], generator=generator) * table.std()  # (V, E)
    known = total = 0.0
    for i, token in enumerate(tokens):
        if token == PAD:
            weight[i] = 0.0
        elif token == UNK:
            weight[i] = table[lac.vocab[OOV]]
        else:
            n = 1.0 if counts is None else float(counts.get(token, 0))
            total += n
            if token in lac.vocab and token != OOV:
                weight[i] = table[lac.vocab[token]]
                known += n
    return weight, (known / total if total else 0.0)
