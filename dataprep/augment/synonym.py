"""Word-level paraphrase: nlpaug's `SynonymAug` over WordNet.

nlpaug tags parts of speech with NLTK's perceptron tagger, whose data cannot be downloaded here.
`WordNetTagger` stands in: each word gets the part of speech WordNet most often gives it (summed
sense counts from `cntlist`), and function words or words WordNet lacks get `DT`, which nlpaug
never replaces. So only content words are swapped, for synonyms of the same part of speech.
"""

from __future__ import annotations

import random
from functools import cache

import numpy as np

from ..errors import DataprepError
from ..settings import Augment
from .base import Augmenter
from .wordnet import load_wordnet

#: Closed-class English words: never replaced (WordNet lists some, e.g. "I" as iodine, "a" as
#: ampere, "can" as a container, which would make nonsense).
FUNCTION_WORDS = frozenset(" ".join([
    "a about above after again against all am an and any are as at be because been before being",
    "below between both but by can could did do does doing down during each few for from further",
    "had has have having he her here hers herself him himself his how i if in into is it its",
    "itself just me might more most must my myself no nor not now of off on once only or other",
    "our ours ourselves out over own same shall she should so some such than that the their",
    "theirs them themselves then there these they this those through to too under until up very",
    "was we were what when where which while who whom why will with would you your yours",
    "yourself yourselves",
]).split())
#: WordNet part of speech -> the Penn tag nlpaug maps back to that part of speech.
PENN = {"n": "NN", "v": "VB", "a": "JJ", "s": "JJ", "r": "RB"}


class WordNetTagger:
    """Most-frequent-sense part-of-speech tags, cached per word."""

    def __init__(self, wordnet) -> None:
        self.wordnet = wordnet

    @cache  # noqa: B019 (one tagger per process; the cache is the point)
    def tag(self, token: str) -> str:
        word = token.lower()
        if word in FUNCTION_WORDS or not word.isalpha() or token.isupper():
            # Upper case: acronyms and PII placeholders (<PHONE>) stay as they are.
            return "DT"
        counts: dict[str, int] = {}
        for lemma in self.wordnet.lemmas(word):
            pos = lemma.synset().pos()
            counts[pos] = counts.get(pos, 0) + lemma.count() + 1
        if not counts:
            return "DT"
        return PENN[max(counts, key=counts.get)]

    def pos_tag(self, tokens: list[str]) -> list[tuple[str, str]]:
        return [(t, self.tag(t)) for t in tokens]


class SynonymSwap(Augmenter):
    origin = "synonym"
    default_batch_size = 256

    def __init__(self, spec: Augment, seed: int) -> None:
        super().__init__(spec, seed)
        try:
            import nlpaug.augmenter.word as naw
        except ImportError:
            raise DataprepError("augment synonym needs nlpaug and nltk: pip install nlpaug "
                                "nltk") from None
        wordnet = load_wordnet()
        self.augmenter = naw.SynonymAug(aug_src="wordnet", aug_p=spec.aug_p,
                                        aug_max=None)
        self.augmenter.model.pos_tag = WordNetTagger(wordnet).pos_tag
        self.random = random.Random(seed)

    @property
    def name(self) -> str:
        return "synonym:nlpaug-wordnet"

    def transform_batch(self, texts: list[str]) -> list[str]:
        # nlpaug draws from the global `random` and numpy generators: seed both per batch from
        # this augmenter's own stream, so results do not depend on what ran before.
        batch_seed = self.random.randrange(2**31)
        random.seed(batch_seed)
        np.random.seed(batch_seed)
        return [str(t) for t in self.augmenter.augment(texts)]
