"""rnnlab.models.lac: jieba's LAC model read into rnnlab modules.

The Paddle tensor reader on hand-made files (always); with jieba installed: the table's shape, the BiGRU's
states on real sentences (bounded, not degenerate), the tags LAC's own emission and CRF layers give on
top of it (right for known sentences, and wrong when the gate layout is deliberately broken: the check
has power), and the mapping into an rnnlab vocabulary with its coverage.
"""

from __future__ import annotations

import struct

import pytest
import torch
from torch.testing import assert_close

from rnnlab.models.lac import read_paddle_tensor, viterbi

pytestmark = pytest.mark.usefixtures("one_thread")


def _paddle_file(path, dims, values, dtype=5):
    """A LoDTensor file as Paddle writes it: versions, LoD level 0, TensorDesc protobuf, float32 data."""
    desc = bytes([0x08, dtype])
    for d in dims:
        desc += bytes([0x10])
        while True:  # varint
            byte, d = d & 0x7F, d >> 7
            desc += bytes([byte | (0x80 if d else 0)])
            if not d:
                break
    header = struct.pack("<IQIi", 0, 0, 0, len(desc)) + desc
    path.write_bytes(header + struct.pack(f"<{len(values)}f", *values))
    return path


def test_read_paddle_tensor_reads_dims_and_values(tmp_path):
    values = [float(i) / 4 for i in range(2 * 300)]  # 300 needs a two-byte varint
    t = read_paddle_tensor(_paddle_file(tmp_path / "w", [2, 300], values))
    assert t.shape == (2, 300) and t.dtype == torch.float32
    assert_close(t.reshape(-1), torch.tensor(values))


def test_read_paddle_tensor_names_what_is_wrong(tmp_path):
    with pytest.raises(ValueError, match="expected float32 \\(Paddle type 5\\), received type 6"):
        read_paddle_tensor(_paddle_file(tmp_path / "a", [2], [1.0, 2.0], dtype=6))
    with pytest.raises(ValueError, match="header says \\[3\\], the file holds 2 values"):
        read_paddle_tensor(_paddle_file(tmp_path / "b", [3], [1.0, 2.0]))
    (tmp_path / "c").write_bytes(b"\0" * 5)
    with pytest.raises(ValueError, match="expected a Paddle tensor file, received 5 bytes"):
        read_paddle_tensor(tmp_path / "c")


def test_viterbi_by_hand():
    # two tags; emissions favour 0 then 1, but the transition 0 -> 1 is forbidden-ish: best is 1, 1
    emissions = torch.tensor([[1.0, 0.8], [0.0, 1.0]])
    start, end = torch.zeros(2), torch.zeros(2)
    transitions = torch.tensor([[0.0, -5.0], [0.0, 0.0]])
    assert viterbi(emissions, start, end, transitions) == [1, 1]  # 0.8 + 1 > 1 + 0 (0 -> 0) > 1 - 5 + 1
    assert viterbi(emissions, torch.tensor([0.0, -1.0]), end, transitions) == [0, 0]


# ------------------------------------------------------------------------------------------------
# jieba's model
# ------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def lac():
    pytest.importorskip("jieba", reason="jieba (the tasks extra) ships the LAC model")
    from rnnlab.models.lac import load_lac

    return load_lac()


BEIJING = [("我", "r"), ("爱", "v"), ("北京", "LOC"), ("天安门", "LOC")]


def test_shapes_and_vocabulary(lac):
    assert lac.embedding.weight.shape == (20941, 128)
    assert len(lac.tags) == 57 and lac.tags[0] == "a-B" and lac.tags[-1] == "O"
    assert lac.vocab["OOV"] == 20940
    assert lac.encode("我爱😀") == [lac.vocab["我"], lac.vocab["爱"], 20940]
    assert lac.encoder.num_layers == 2 and lac.encoder.bidirectional and lac.encoder.hidden_size == 128


def test_hidden_states_are_bounded_and_not_degenerate(lac):
    texts = ["价格便宜，但是用了两天就坏了", "我不喜欢数学", "物流很快，包装也很好"]
    ids = [lac.encode(t) for t in texts]
    padded = torch.zeros(len(ids), max(map(len, ids)), dtype=torch.long)
    for i, row in enumerate(ids):
        padded[i, : len(row)] = torch.tensor(row)
    lengths = torch.tensor([len(r) for r in ids])
    with torch.no_grad():
        h = lac.features(padded, lengths)  # (B, T, 256)
    assert h.shape == (3, max(lengths), 256)
    valid = h[0, : lengths[0]]
    assert valid.abs().max() <= 1.0  # a GRU state is a convex mix of tanh values
    assert valid.std() > 0.3 and valid.abs().mean() > 0.2  # neither saturated at 0 nor constant
    assert valid.std(dim=0).mean() > 0.1  # it varies along the sentence
    assert (h[1, lengths[1] :] == 0).all()
    with torch.no_grad():  # each padded row equals its text alone
        assert_close(h[1, : lengths[1]], lac.features(padded[1:2, : lengths[1]])[0], atol=1e-5, rtol=1e-5)


def test_tags_are_right_on_known_sentences(lac):
    assert lac.segment("我爱北京天安门") == BEIJING
    words = dict(lac.segment("李小福是创新办主任也是云计算方面的专家"))
    assert words["李小福"] == "PER" and words["主任"] == "n" and words["专家"] == "n" and words["的"] == "u"
    assert dict(lac.segment("价格便宜，但是用了两天就坏了"))["但是"] == "c"  # the contrast conjunction


def test_a_broken_gate_layout_gives_wrong_tags(lac):
    """The tag check has power: swap the reset and update gates' weights and the tags fall apart."""
    import copy

    broken = copy.deepcopy(lac)
    H = 128
    with torch.no_grad():
        for p in broken.encoder.parameters():
            r, z, n = p.split([H, H, H], dim=0)
            p.copy_(torch.cat([-z, -r, n]))  # r <-> u (= -z)
    assert broken.segment("我爱北京天安门") != BEIJING


def test_vocabulary_mapping_and_coverage(lac):
    from rnnlab.models.lac import lac_embeddings_for

    tokens = ["<pad>", "<unk>", "的", "好", "😀", "a"]
    weight, coverage = lac_embeddings_for(tokens, lac, generator=torch.Generator().manual_seed(0))
    table = lac.embedding.weight.detach()
    assert weight.shape == (6, 128)
    assert_close(coverage, 3 / 4)  # 的, 好, a known; 😀 not
    assert (weight[0] == 0).all()
    assert_close(weight[1], table[lac.vocab["OOV"]])
    for i in (2, 3, 5):
        assert_close(weight[i], table[lac.vocab[tokens[i]]])
    fresh = weight[4]
    assert not any(torch.equal(fresh, row) for row in table[:100])
    assert 0.2 < fresh.std() / table.std() < 5  # fresh rows on LAC's scale
    weighted, share = lac_embeddings_for(tokens, lac, counts={"的": 6, "好": 1, "😀": 3, "a": 0})
    assert_close(share, 7 / 10)
    assert_close(weighted[2], weight[2])
    with pytest.raises(TypeError, match="tokens: expected a sequence of str"):
        lac_embeddings_for("的好", lac)
