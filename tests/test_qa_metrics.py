"""dltm.qa_metrics: CMRC 2018 and SQuAD v1.1 EM/F1 on hand-computed cases, and locate_answer."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from dltm.qa_metrics import (
    CMRC_PUNCTUATION,
    cmrc_em,
    cmrc_f1,
    cmrc_scores,
    locate_answer,
    longest_common_substring,
    mixed_segmentation,
    normalize_answer,
    remove_punctuation,
    squad_em,
    squad_f1,
    squad_scores,
)

CMRC_DIR = Path("/work/shared/datasets/cmrc2018/squad-style-data")


# ---------------------------------------------------------------- CMRC 2018


def test_punctuation_list_is_the_official_one():
    # 11 ASCII symbols + 22 full-width/Chinese entries of the official sp_char ("……" is one entry).
    assert len(CMRC_PUNCTUATION) == 33
    assert CMRC_PUNCTUATION[:11] == ("-", ":", "_", "*", "^", "/", "\\", "~", "`", "+", "=")
    assert "……" in CMRC_PUNCTUATION and "." not in CMRC_PUNCTUATION and "," not in CMRC_PUNCTUATION


def test_segmentation_chinese_characters_and_words():
    # One token per Chinese character; "2018" is one word; upper case lowered, outer spaces stripped.
    assert mixed_segmentation("2018年") == ["2018", "年"]
    assert mixed_segmentation("  Python3.8版本，BERT模型 ") == ["python3.8", "版", "本", "，", "bert", "模", "型"]
    assert mixed_segmentation("北京，大学", rm_punc=True) == ["北", "京", "大", "学"]
    # Official quirk kept: a removed punctuation char does not end the English run ("a-b" -> "ab").
    assert mixed_segmentation("a-b", rm_punc=True) == ["ab"]
    assert mixed_segmentation("a-b") == ["a", "-", "b"]
    # Non-listed punctuation (ASCII ".", "!") is a token of its own and is NOT removed by rm_punc.
    assert mixed_segmentation("hello world!", rm_punc=True) == ["hello", "world", "!"]


def test_cmrc_em_with_and_without_punctuation():
    assert remove_punctuation(" 北京。") == "北京"
    assert cmrc_em("北京。", ["北京"]) == 1.0  # "。" is in the list, removed before comparing
    assert cmrc_em("北京", ["北京"]) == 1.0
    assert cmrc_em("《红楼梦》", ["红楼梦"]) == 1.0  # "《" "》" in the list
    assert cmrc_em("BERT", ["bert"]) == 1.0  # lower-cased
    assert cmrc_em("北京.", ["北京"]) == 0.0  # ASCII "." is not in the official list
    assert cmrc_em("北京大学", ["北京"]) == 0.0


def test_cmrc_f1_partial_overlap():
    # pred 北京大学 (4 tokens), answer 北京 (2): lcs 2 -> p = 2/4, r = 2/2 -> f1 = 2*(1/2)*1/(3/2) = 2/3.
    assert cmrc_f1("北京大学", ["北京"]) == pytest.approx(2 / 3)
    # pred 北京. -> [北, 京, "."] (3 tokens, "." kept), answer [北, 京]: p = 2/3, r = 1 -> f1 = (4/3)/(5/3) = 4/5.
    assert cmrc_f1("北京.", ["北京"]) == pytest.approx(0.8)
    assert cmrc_f1("北京。", ["北京"]) == 1.0  # "。" removed from the prediction tokens
    assert cmrc_f1("上海", ["北京"]) == 0.0


def test_cmrc_f1_numbers_are_words_not_characters():
    # pred 2018年 -> [2018, 年], answer 2018 -> [2018]: lcs 1, p = 1/2, r = 1 -> f1 = 1/(3/2) = 2/3.
    # (A character split would give [2,0,1,8,年] vs [2,0,1,8]: p = 4/5, r = 1 -> 8/9.)
    assert cmrc_f1("2018年", ["2018"]) == pytest.approx(2 / 3)
    # Mixed: pred "BERT模型" -> [bert, 模, 型]; answer "bert" -> [bert]: p = 1/3, r = 1 -> (2/3)/(4/3) = 1/2.
    assert cmrc_f1("BERT模型", ["bert"]) == pytest.approx(0.5)


def test_cmrc_f1_uses_contiguous_substring_not_subsequence():
    # answer 北京大学 [北,京,大,学], pred 北大 [北,大]. Common subsequence 北..大 has length 2, but the longest
    # common *substring* is 1 (北 or 大). Substring: p = 1/2, r = 1/4 -> f1 = (2*1/8)/(3/4) = 1/3.
    # (Subsequence would give p = 1, r = 1/2 -> 2/3.)
    assert longest_common_substring(list("北京大学"), list("北大")) == 1
    assert longest_common_substring(list("abcxyz"), list("zabcy")) == 3
    assert cmrc_f1("北大", ["北京大学"]) == pytest.approx(1 / 3)


def test_cmrc_max_over_answers():
    # vs 北京: 2/3 (above); vs 大学城 [大,学,城]: lcs 大学 = 2, p = 2/4, r = 2/3 -> (2/3)/(7/6) = 4/7. max = 2/3.
    assert cmrc_f1("北京大学", ["大学城", "北京"]) == pytest.approx(2 / 3)
    assert cmrc_f1("北京大学", ["北京", "北京大学"]) == 1.0
    assert cmrc_em("北京大学", ["北京", "北京大学。"]) == 1.0


def test_cmrc_empty_prediction_and_bad_answers():
    assert cmrc_f1("", ["北京"]) == 0.0
    assert cmrc_em("", ["北京"]) == 0.0
    with pytest.raises(ValueError):
        cmrc_f1("北京", [])
    with pytest.raises(TypeError):
        cmrc_em("北京", "北京")  # type: ignore[arg-type]


def test_cmrc_scores_with_missing_prediction():
    references = {"q1": ["北京"], "q2": ["2018年"], "q3": ["上海"]}
    predictions = {"q1": "北京。", "q2": "2018", "q4": "ignored"}
    # q1: EM 1, F1 1.  q2: [2018] vs [2018, 年]: p = 1, r = 1/2 -> F1 2/3, EM 0.  q3 missing: 0, 0.
    scores = cmrc_scores(predictions, references)
    assert scores["questions"] == 3
    assert scores["em"] == pytest.approx(1 / 3)
    assert scores["f1"] == pytest.approx((1 + 2 / 3) / 3)  # 5/9
    with pytest.raises(ValueError):
        cmrc_scores(predictions, {})


# ---------------------------------------------------------------- SQuAD v1.1


def test_squad_normalize_and_em():
    assert normalize_answer("The  Cat, a dog!") == "cat dog"  # punctuation, articles, whitespace
    assert normalize_answer("Theatre an-other") == "theatre another"  # only whole-word articles; "-" dropped
    assert squad_em("The Cat", ["cat"]) == 1.0
    assert squad_em("cat.", ["a cat"]) == 1.0
    assert squad_em("cats", ["cat"]) == 0.0
    assert squad_em("北京。", ["北京"]) == 0.0  # "。" is not in string.punctuation


def test_squad_token_f1():
    # pred -> [cat, sat, on, mat] (4), answer "a cat on a mat" -> [cat, on, mat] (3): common 3,
    # p = 3/4, r = 1 -> f1 = (3/2)/(7/4) = 6/7.
    assert squad_f1("the cat sat on the mat", ["a cat on a mat"]) == pytest.approx(6 / 7)
    # Bag of tokens: [cat, cat] vs [cat] share 1 (min count), p = 1/2, r = 1 -> 2/3.
    assert squad_f1("cat cat", ["cat"]) == pytest.approx(2 / 3)
    # Order does not matter for F1, but does for EM.
    assert squad_f1("mat cat", ["cat mat"]) == 1.0
    assert squad_em("mat cat", ["cat mat"]) == 0.0
    # Max over answers: vs "dog" 0, vs "the cat" 1.
    assert squad_f1("Cat", ["dog", "the cat"]) == 1.0
    assert squad_f1("", ["cat"]) == 0.0


def test_squad_scores_with_missing_prediction():
    # a: EM 1, F1 1; b missing: 0 -> both 1/2.
    scores = squad_scores({"a": "cat"}, {"a": ["The Cat"], "b": ["dog"]})
    assert scores == {"em": 0.5, "f1": 0.5, "questions": 2}


# ---------------------------------------------------------------- locate_answer


def test_locate_answer():
    context = "北京大学在北京"  # 北京 at 0 and 5
    assert locate_answer(context, "北京", 0) == 0  # correct offset kept
    assert locate_answer(context, "北京", 5) == 5
    assert locate_answer(context, "北京", 4) == 5  # off: |0-4| = 4 > |5-4| = 1
    assert locate_answer(context, "北京", 1) == 0  # off: |0-1| = 1 < |5-1| = 4
    assert locate_answer("北京和和北京", "北京", 2) == 0  # tie |0-2| = |4-2|: the earlier
    assert locate_answer(context, "北京", None) == 0
    assert locate_answer(context, "北京", -1) == 0  # negative offsets never slice from the end
    assert locate_answer(context, "上海", 0) is None
    with pytest.raises(ValueError):
        locate_answer(context, "", 0)


@pytest.mark.parametrize(
    ("split", "answers", "misses", "not_found"),
    # Counted on the official files: all 21 train misses are off by a few characters; of the 200 dev misses, 7 are
    # off by 1-2 characters and 193 have answer_start -1 with a text that does not occur in its context.
    [("train", 10142, 21, 0), ("dev", 9657, 200, 193)],
)
def test_locate_answer_on_cmrc_files(split: str, answers: int, misses: int, not_found: int):
    path = CMRC_DIR / f"cmrc2018_{split}.json"
    if not path.exists():
        pytest.skip(f"CMRC 2018 mirror not present: {path}")
    data = json.loads(path.read_text(encoding="utf-8"))
    total = missed = unfound = 0
    for article in data["data"]:
        for paragraph in article["paragraphs"]:
            context = paragraph["context"]
            for qa in paragraph["qas"]:
                for answer in qa["answers"]:
                    total += 1
                    start, text = answer["answer_start"], answer["text"]
                    if context[start : start + len(text)] == text:
                        assert locate_answer(context, text, start) == start
                        continue
                    missed += 1
                    found = locate_answer(context, text, start)
                    if found is None:
                        unfound += 1
                        assert text not in context
                    else:
                        assert context[found : found + len(text)] == text
    assert (total, missed, unfound) == (answers, misses, not_found)
