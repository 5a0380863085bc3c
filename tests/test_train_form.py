"""The Train form's fields take their bounds, steps and defaults from the option declarations (config.py), the
one limit on input size holds everywhere, and the app's page list is declared once (pages/_registry.py)."""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from fer_core.cli import build_parser
from fer_core.config import MAX_INPUT_SIZE, ConfigError, TrainConfig, bounds, check_options, default, options
from fer_core.model.backbones import ModelConfigError, resolve_input_size
from pages._registry import PAGES, home_links

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def train_page(tmp_path_factory) -> AppTest:
    mp = pytest.MonkeyPatch()
    mp.setenv("FER_RUNS_DIR", str(tmp_path_factory.mktemp("runs")))
    at = AppTest.from_file(str(REPO / "streamlit_app.py"), default_timeout=180)
    at.run()
    at.switch_page("pages/train.py")
    at.run()
    mp.undo()
    assert not at.exception, [e.value for e in at.exception]
    return at


def test_every_number_field_has_the_declared_range_step_and_default(train_page):
    fields = {n.key[2:]: n for n in train_page.number_input if n.key and n.key.startswith("f_")}
    assert {"epochs", "batch_size", "learning_rate", "input_size", "seed", "max_samples"} <= set(fields)
    for name, field in fields.items():
        declared = bounds(name)
        assert (field.min, field.max) == (declared["min_value"], declared["max_value"]), name
        if declared["step"] is not None:
            assert field.step == declared["step"], name
        assert field.value == default(name), name


def test_every_choice_and_switch_starts_at_the_declared_default(train_page):
    boxes = [w for w in (*train_page.selectbox, *train_page.checkbox) if w.key and w.key.startswith("f_")]
    assert any(w.key == "f_backbone" for w in boxes)
    for w in boxes:
        assert w.value == default(w.key[2:]), w.key


def test_the_form_and_the_cli_default_to_the_same_backbone():
    args = build_parser().parse_args(["train", "--data", "x"])
    assert args.backbone == default("backbone") == TrainConfig().backbone


def test_one_input_size_limit_refused_before_any_data_is_read():
    assert options()["input_size"][1].high == MAX_INPUT_SIZE
    check_options(TrainConfig(data="x", input_size=MAX_INPUT_SIZE))
    with pytest.raises(ConfigError, match="input size"):
        check_options(TrainConfig(data="x", input_size=MAX_INPUT_SIZE + 80))       # --input-size 400
    assert resolve_input_size("fer_vgg", MAX_INPUT_SIZE) == MAX_INPUT_SIZE
    with pytest.raises(ModelConfigError):
        resolve_input_size("fer_vgg", MAX_INPUT_SIZE + 1)


def test_the_page_list_is_declared_once():
    assert [p.path for p in PAGES if p.url_path is None] == ["pages/home.py"]
    for p in PAGES:
        assert (REPO / p.path).is_file(), p.path
    linked = home_links(0) + home_links(1)
    assert sorted(p.path for p in linked) == sorted(p.path for p in PAGES if p.path != "pages/home.py")
    for source in ("streamlit_app.py", "pages/home.py"):
        text = (REPO / source).read_text(encoding="utf-8")
        assert not any(f'"{p.path}"' in text for p in PAGES), f"{source} names a page itself"
