import numpy as np
import pytest

from dltm.text import Tokenizer, clean_str, pad_post, restrict_vocab
from pipelines.ch07_text_cnn import BOOK_SEQUENCES, BOOK_WORD_INDEX, docs

from .conftest import MIRROR, needs_mirror


def test_tokenizer_reproduces_the_books_word_index_and_sequences():
    t = Tokenizer()
    t.fit_on_texts(docs)
    assert t.word_index == BOOK_WORD_INDEX
    assert t.texts_to_sequences(docs) == BOOK_SEQUENCES
    assert t.document_count == 10
    assert t.word_counts["work"] == 3 and t.word_docs["work"] == 3
    assert list(t.word_counts)[:3] == ["well", "done", "good"]  # first-seen order


def test_num_words_keeps_indices_below_it_and_statistics_ignore_it():
    t = Tokenizer(num_words=4)
    t.fit_on_texts(docs)
    assert len(t.word_index) == 14
    assert t.texts_to_sequences(["good work, well done; great effort"]) == [[3, 1, 2]]


def test_oov_token_takes_index_1_and_replaces_unknown_and_cut_words():
    t = Tokenizer(num_words=5, oov_token="UNK")
    t.fit_on_texts(docs)
    assert t.word_index["UNK"] == 1 and t.word_index["work"] == 2
    assert t.texts_to_sequences(["work morning effort"]) == [[2, 1, 1]]  # effort has index 5 >= num_words


# Keras 2's legacy Tokenizer (not installed here) gave [[2, 6, 6, 6, 6]] for this case: 'unk' was ranked again
# among the words, took index 6 (its count's rank) instead of 1, and 6 >= num_words=3 reached the model.
KERAS2_OOV_IN_TEXT = [[2, 6, 6, 6, 6]]


def test_oov_token_that_also_occurs_in_the_texts_keeps_index_1_and_indices_stay_below_num_words():
    texts = ["the film the film the end", "an unk cameo"]
    t = Tokenizer(num_words=3, oov_token="unk")
    t.fit_on_texts(texts)
    assert t.word_index == {"unk": 1, "the": 2, "film": 3, "end": 4, "an": 5, "cameo": 6}
    seqs = t.texts_to_sequences(["the film had a cameo"])
    assert seqs == [[2, 1, 1, 1, 1]] != KERAS2_OOV_IN_TEXT
    assert t.sequences_to_texts(seqs) == ["the unk unk unk unk"]
    assert t.word_counts["unk"] == 1 and t.index_docs[1] == 1  # the statistics still count it as a word
    # siblings: the token ranked first by count, no num_words, and written in upper case (lower=True folds it)
    top = Tokenizer(num_words=3, oov_token="the")
    top.fit_on_texts(texts)
    assert top.word_index["the"] == 1 and top.word_index["film"] == 2
    assert top.texts_to_sequences(["the film had an end"]) == [[1, 2, 1, 1, 1]]
    every = Tokenizer(oov_token="unk")
    every.fit_on_texts(texts)
    assert sorted(every.word_index.values()) == list(range(1, 7)) and every.texts_to_sequences(["UNK x"]) == [[1, 1]]
    big = Tokenizer(num_words=4, oov_token="UNK", lower=True)
    big.fit_on_texts(["UNK UNK UNK a b"])  # lowercased to 'unk': a word of its own, not the token
    assert big.word_index == {"UNK": 1, "unk": 2, "a": 3, "b": 4}
    assert max(i for q in big.texts_to_sequences(["UNK unk a b c"]) for i in q) < 4


def test_oov_token_needs_room_below_num_words():
    with pytest.raises(ValueError, match=r"num_words=1 leaves no index for oov_token='unk'"):
        Tokenizer(num_words=1, oov_token="unk")
    t = Tokenizer(num_words=2, oov_token="unk")
    t.fit_on_texts(["a b unk"])
    assert t.texts_to_sequences(["a b unk c"]) == [[1, 1, 1, 1]]


def test_filters_lower_split_and_char_level():
    t = Tokenizer(lower=False, filters="!", split="|")
    t.fit_on_texts(["A|b!|A", "b"])
    assert t.word_index == {"A": 1, "b": 2}
    c = Tokenizer(char_level=True)
    c.fit_on_texts(["abA"])
    assert c.word_index == {"a": 1, "b": 2}


def test_json_round_trip_keeps_everything():
    t = Tokenizer(num_words=7, oov_token="<unk>")
    t.fit_on_texts(docs)
    u = Tokenizer.from_config(__import__("json").loads(t.to_json()))
    assert u.get_config() == t.get_config()
    assert u.texts_to_sequences(docs) == t.texts_to_sequences(docs)


def test_clean_str_is_kims():
    assert clean_str("It's a \"great\" film, isn't it?!") == "it 's a great film , is n't it \\? !"
    # Kim's replacement keeps the backslash before brackets and '?'
    assert clean_str("(yes)") == "\\( yes \\)"
    assert clean_str("caf\u00e9 -- ok") == "caf ok"


def test_pad_post_and_restrict_vocab_equal_a_num_words_tokenizer():
    texts = ["a b c d", "d d e", "f a", "b"]
    full = Tokenizer()
    full.fit_on_texts(texts)
    padded = pad_post(full.texts_to_sequences(texts))
    assert padded.shape == (4, 4) and padded[1].tolist() == [1, 1, full.word_index["e"], 0]
    for n in (1, 2, 3, 5, None):
        cut = Tokenizer(num_words=n)
        cut.fit_on_texts(texts)
        expected = pad_post(cut.texts_to_sequences(texts))
        np.testing.assert_array_equal(restrict_vocab(padded, n), expected)


def test_bad_num_words_is_rejected():
    with pytest.raises(ValueError, match="num_words"):
        Tokenizer(num_words=0)


def _legacy():
    return pytest.importorskip("keras.src.legacy.preprocessing.text").Tokenizer


@pytest.mark.parametrize("kw", [{}, {"num_words": 6, "oov_token": "<oov>"}, {"num_words": 3}])
def test_same_as_legacy_keras_on_small_texts(kw):
    texts = docs + ["Good good WORK!!", "nothing-to see\there", "effort; effort: effort"]
    ours, legacy = Tokenizer(**kw), _legacy()(**kw)
    ours.fit_on_texts(texts)
    legacy.fit_on_texts(texts)
    assert ours.word_index == legacy.word_index
    assert ours.word_counts == dict(legacy.word_counts)
    assert ours.word_docs == dict(legacy.word_docs)
    probe = texts + ["unknown words and work"]
    assert ours.texts_to_sequences(probe) == legacy.texts_to_sequences(probe)


@needs_mirror
def test_same_as_legacy_keras_on_the_whole_mr_corpus():
    from dltm.data import load_mr_raw

    texts, _ = load_mr_raw(MIRROR / "mr")
    for kw in ({}, {"num_words": 10000}):
        ours, legacy = Tokenizer(**kw), _legacy()(**kw)
        ours.fit_on_texts(texts)
        legacy.fit_on_texts(texts)
        assert ours.word_index == legacy.word_index
        assert ours.word_counts == dict(legacy.word_counts)
        assert ours.word_docs == dict(legacy.word_docs)
        assert ours.texts_to_sequences(texts) == legacy.texts_to_sequences(texts)
    assert len(ours.word_index) > 18000


def test_fit_is_independent_of_string_hashing():
    import subprocess
    import sys

    code = ("from dltm.text import Tokenizer; t = Tokenizer(); "
            "t.fit_on_texts(['b a c a', 'c d b', 'e a']); print(t.to_json())")
    outs = {subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                           env={**__import__("os").environ, "PYTHONHASHSEED": str(seed)}).stdout
            for seed in (0, 1, 2, 3)}
    assert len(outs) == 1
