"""Where each data file comes from and what its bytes must hash to.

One table, ``FILES``, keyed by the file's path relative to the data root (the layout of
``shared/data``). The SHA-256 digests are pinned here, in code, as well as in the data
folder's ``SHA256SUMS``: a checksum file that sits next to the data can be edited together
with the data, so it alone cannot tell a corrupted or swapped file from the real one.

``url`` is the file's public home; ``member`` is the path inside the archive when the URL
is a zip. ``url=None`` marks a file that has no public home of its own (it was derived).
Some public homes serve a different revision or layout of the same corpus than the copy
pinned here; see the per-corpus notes below. A download is accepted only when its bytes
match the pinned digest, so such a mismatch is reported, never silently used.
"""

from __future__ import annotations

from dataclasses import dataclass

_M30K = "https://raw.githubusercontent.com/multi30k/dataset/master/data/task1/raw"
_SHAKESPEARE = "https://raw.githubusercontent.com/karpathy/char-rnn/master/data/tinyshakespeare/input.txt"
_TATOEBA = "https://www.manythings.org/anki/cmn-eng.zip"
_GLUE_SST2 = "https://dl.fbaipublicfiles.com/glue/data/SST-2.zip"
# NLTK's gutenberg corpus holds only three Austen novels (emma, persuasion, sense), in a
# different edition ("[Emma by Jane Austen 1816]" headers), so it cannot reproduce these six
# files; Project Gutenberg, where all six texts come from, is used instead.
_GUTENBERG = "https://www.gutenberg.org/cache/epub/{id}/pg{id}.txt"


@dataclass(frozen=True)
class Source:
    """One data file: its pinned SHA-256 and where to fetch it."""

    sha256: str
    url: str | None
    member: str | None = None


def _austen(sha256: str, gutenberg_id: int) -> Source:
    return Source(sha256, _GUTENBERG.format(id=gutenberg_id))


FILES: dict[str, Source] = {
    "austen/austen_emma.txt": _austen(
        "7c67b5985c6d0de1efaeb5d342d52cb82c38083c40e2295129e30e87ee690ebe", 158),
    "austen/austen_mansfieldpark.txt": _austen(
        "98bc90519cdf4ef663ad7de2734bb529435ef24f7abbde6bb1a50898871dafe9", 141),
    "austen/austen_northangerabbey.txt": _austen(
        "51f91bbe0517db8e65cff009b097ce0a1836124c4e0532ac19e6c0cad982abed", 121),
    "austen/austen_persuasion.txt": _austen(
        "8061549557aebd2fd6e353d18d9197cb707029112bd52d4d8b174583a925848a", 105),
    "austen/austen_prideprejudice.txt": _austen(
        "dfc684d4f857fa938268f9ab9c5567b64bd0691251eca959644adeabe6287a4d", 1342),
    "austen/austen_sensesensibility.txt": _austen(
        "105e1651fe93bed7130078578efd31e0c557d68667ba672ddc876f735b30fe09", 161),
    "multi30k/test_2016_flickr.de.gz": Source(
        "9204244e408ccb38d2a55cfcd344df15005fc42a07a6e55ca6c52b6ababb8cc8",
        f"{_M30K}/test_2016_flickr.de.gz"),
    "multi30k/test_2016_flickr.en.gz": Source(
        "611d361c6334bc7246101d48097c13cf5c4413c5befc793cc629934359d532d9",
        f"{_M30K}/test_2016_flickr.en.gz"),
    "multi30k/train.de.gz": Source(
        "726e39b2fa9eb9ffb6dc763fb35a179f80fae06ffc5d28b6ace5faa883de28a6",
        f"{_M30K}/train.de.gz"),
    "multi30k/train.en.gz": Source(
        "d79cfa999dd4c51d2cb42499b6796d5a882c3a8a961923c25a898c90f8bbd56f",
        f"{_M30K}/train.en.gz"),
    "multi30k/val.de.gz": Source(
        "f0cba2f995189cf5770f29a8a9a537a3ad3f51657ad873405082ff6863a5e75a",
        f"{_M30K}/val.de.gz"),
    "multi30k/val.en.gz": Source(
        "14f7d25ddd868909a9213e361768460edcacdd6ab9d1e77b92560dc10c10dc28",
        f"{_M30K}/val.en.gz"),
    # The pinned copy has a `label<TAB>sentence` header (GLUE's zip: `sentence<TAB>label`);
    # the loader reads either column order.
    "sst2/dev.tsv": Source(
        "84207e6be5873fb18db798cc6faec86871f5a426554650ff64a1c34e87665f6f",
        _GLUE_SST2, "SST-2/dev.tsv"),
    "sst2/train.tsv": Source(
        "e981ceb4fe6c9acd1c79851d0d091b9e78103f1f2a399ca83dda27915d41c56c",
        _GLUE_SST2, "SST-2/train.tsv"),
    # ManyThings rebuilds cmn-eng.zip as Tatoeba grows; the pinned revision has 29,155 pairs.
    "tatoeba-zh-en/cmn.txt": Source(
        "aa264a2447b26ab7c9d413f8321f9e2a779fd134b5118306b6e26a3499b3926e",
        _TATOEBA, "cmn.txt"),
    # Derived from the Tatoeba test set (pairs whose sides never occur in cmn.txt): no
    # public file has exactly these bytes, so it is only copied, never downloaded.
    "tatoeba-zh-en/test.tsv": Source(
        "30be0e0afd2f93be37e32e737c132107130932a0f701e8370ba0e5a844e80177", None),
    "tinyshakespeare/input.txt": Source(
        "86c4e6aa9db7c042ec79f339dcb96d42b0075e16b8fc2e86bf0ca57e2dc565ed", _SHAKESPEARE),
}

CORPUS_DIRS: dict[str, str] = {
    "multi30k": "multi30k",
    "tatoeba": "tatoeba-zh-en",
    "shakespeare": "tinyshakespeare",
    "sst2": "sst2",
    "austen": "austen",
}


def corpus_files(name: str) -> list[str]:
    """Relative paths of every pinned file of corpus ``name`` (a key of ``CORPUS_DIRS``)."""
    prefix = CORPUS_DIRS[name] + "/"
    return sorted(path for path in FILES if path.startswith(prefix))
