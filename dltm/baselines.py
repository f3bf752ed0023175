"""Non-neural baselines set beside the chapters' networks on the same split."""

from __future__ import annotations

import numpy as np


def tfidf_logistic_regression(train_docs: list[str], y_train: np.ndarray, test_docs: list[str]) -> np.ndarray:
    """A TF-IDF logistic regression (scikit-learn: tokens are the whitespace-separated strings as given, sublinear
    tf, tokens in 2+ training documents, L2, C=1): the predicted class of each of ``test_docs``, (len(test_docs),).
    Chapter 11.4 sets it beside the self-attentive BiLSTM, chapter 12 beside BERT (KerasHub's pre-training guide
    uses a bag of words the same way)."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression

    vec = TfidfVectorizer(token_pattern=r"\S+", lowercase=False, min_df=2, sublinear_tf=True)
    clf = LogisticRegression(C=1.0, max_iter=2000).fit(vec.fit_transform(train_docs), y_train)
    return clf.predict(vec.transform(test_docs))
