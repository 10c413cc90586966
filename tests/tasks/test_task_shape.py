"""Every preset is one typed ``Task``; its overrides reach the field they name; ``test(split=)``
scores the split asked for, and refuses one the corpus does not have."""

from __future__ import annotations

import pytest
import torch

from qkv import ConfigError, build_model
from qkv.tasks import TASKS, Task, get_task, option_names
from qkv.tasks.run import configure

TINY_MT = ["d_model=32", "n_layers=1", "n_heads=2", "d_ff=64", "vocab_size=300", "train_limit=64"]


@pytest.mark.parametrize("name", list(TASKS))
def test_every_preset_is_a_task_of_its_family(name):
    task = get_task(name)
    assert isinstance(task, Task) and task.name == name and task.description
    assert task.model.family == task.family and task.test_split in task.splits
    assert "model" not in option_names(type(task)) and "name" not in option_names(type(task))


def test_overrides_reach_the_field_they_name():
    task = configure("translate-de-en", ["max_tokens=500", "train_limit=none", "lr=2e-3", "d_model=64"])
    assert (task.max_tokens, task.train_limit, task.train.lr, task.model.d_model) == (500, None, 2e-3, 64)
    assert get_task("translate-de-en").max_tokens == 3500  # the preset itself is untouched
    lm = configure("lm-shakespeare", ["batch_size=3"])
    assert lm.batch_size == 3 and "batch_size" not in lm.train.to_dict()


def test_batch_budget_override_changes_the_batches(tmp_path):
    small, large = configure("translate-de-en", [*TINY_MT, "max_tokens=200"]), configure("translate-de-en", TINY_MT)
    small.prepare(tmp_path)
    large.prepare(tmp_path)  # reuses the tokenizer the first one wrote
    assert len(small.batches()(0)) > len(large.batches()(0))
    widest = max(max(b["src"].numel(), b["labels"].numel()) for b in small.batches()(0))
    assert widest <= 200


def test_a_task_option_refuses_a_value_of_the_wrong_type():
    with pytest.raises(ConfigError, match="train_limit"):
        configure("translate-de-en", ["train_limit=many"])


def test_translation_test_scores_the_split_asked_for(tmp_path):
    task = configure("translate-de-en", TINY_MT)
    task.prepare(tmp_path)
    torch.manual_seed(0)
    model = build_model(task.model_config()).eval()
    val, test = task.test(model, split="val", beams=1, limit=3), task.test(model, beams=1, limit=3)
    assert val["split"] == "val" and test["split"] == "test"
    assert [e["source"] for e in val["examples"]] != [e["source"] for e in test["examples"]]


@pytest.mark.parametrize("name,split", [("lm-shakespeare", "test"), ("classify-sst2", "test"),
                                        ("translate-de-en", "dev")])
def test_a_split_the_corpus_lacks_is_refused(name, split):
    with pytest.raises(ConfigError, match=f"no split '{split}'"):
        get_task(name).check_split(split)


def test_an_override_the_model_cannot_use_is_said(recwarn):
    from qkv.errors import QkvNotice

    configure("translate-de-en", ["pooling=max", "d_model=64"])
    notices = [str(w.message) for w in recwarn if issubclass(w.category, QkvNotice)]
    assert notices == ["pooling has no effect on translate-de-en's model: only the encoder's classify head pools "
                       "or has classes"]
