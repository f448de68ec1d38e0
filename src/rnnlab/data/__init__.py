"""Raw data -> tokens -> ids -> batches. Imports torch (and numpy) only, never :mod:`rnnlab.nn`.

* :mod:`~rnnlab.data.sources`: the bundled data sets (``reviews-zh``, ``movies-en``) and the user's own
  CSV / TSV / JSONL files, de-duplicated.
* :mod:`~rnnlab.data.text`: character and word tokenizers, :class:`Vocab`.
* :mod:`~rnnlab.data.batching`: stratified seeded splits, length-bucketed batches, padding.
"""

from rnnlab.data.batching import (
    Batch,
    BucketBatchSampler,
    Splits,
    TextBatches,
    collate,
    fingerprint,
    make_splits,
    stratified_split,
)
from rnnlab.data.sources import (
    DATASETS,
    DataError,
    LabeledTexts,
    cache_dir,
    deduplicate,
    load_data,
    load_movies_en,
    load_reviews_zh,
    read_labeled_file,
)
from rnnlab.data.text import (
    PAD,
    TOKENIZERS,
    UNK,
    CharTokenizer,
    Vocab,
    WordTokenizer,
    choose_tokenizer,
    make_tokenizer,
    tokenizer_from_dict,
)

__all__ = [
    "Batch",
    "BucketBatchSampler",
    "TextBatches",
    "collate",
    "fingerprint",
    "make_splits",
    "Splits",
    "stratified_split",
    "DATASETS",
    "DataError",
    "LabeledTexts",
    "cache_dir",
    "deduplicate",
    "load_data",
    "load_movies_en",
    "load_reviews_zh",
    "read_labeled_file",
    "PAD",
    "UNK",
    "TOKENIZERS",
    "CharTokenizer",
    "WordTokenizer",
    "Vocab",
    "choose_tokenizer",
    "make_tokenizer",
    "tokenizer_from_dict",
]
