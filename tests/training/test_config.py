"""Config loading: presets by name or path, --set overrides, clear errors."""

import pytest

from cmdvideo.config import available_configs, load_config, parse_overrides


def test_presets_load_by_name_and_path():
    assert {"tiny", "ucf101-pixel-64", "webvid-latent-512x1024"} <= set(available_configs())
    by_name = load_config("tiny")
    by_path = load_config("configs/tiny.yaml")
    assert by_name == by_path
    assert by_name.data.source == "moving-shapes" and by_name.autoencoder.preset == "tiny"
    webvid = load_config("webvid-latent-512x1024")
    assert (webvid.data.height, webvid.data.width, webvid.autoencoder.vae_subfolder) == (
        512,
        1024,
        "vae",
    )


def test_overrides_are_typed_and_nested():
    assert parse_overrides(["train.batch_size=8", "a.b.c=1e-4", "x=null"]) == {
        "train": {"batch_size": 8},
        "a": {"b": {"c": 1e-4}},
        "x": None,
    }
    cfg = load_config("tiny", ["train.batch_size=3", "autoencoder.overrides.hidden_size=64"])
    assert cfg.train.batch_size == 3 and cfg.autoencoder.overrides == {"hidden_size": 64}
    assert cfg.train.learning_rate == load_config("tiny").train.learning_rate  # rest untouched


def test_round_trip_through_saved_yaml(tmp_path):
    cfg = load_config("tiny", ["train.max_steps=7"])
    cfg.save(tmp_path / "c.yaml")
    assert load_config(tmp_path / "c.yaml") == cfg


def test_bad_config_errors_name_the_fix():
    with pytest.raises(FileNotFoundError, match="presets: .*tiny"):
        load_config("no-such-config")
    with pytest.raises(
        ValueError, match=r"unknown key\(s\) \['batchsize'\] in config.train; valid keys"
    ):
        load_config("tiny", ["train.batchsize=8"])
    with pytest.raises(
        ValueError, match="config.train.batch_size must be of type int, got 'eight'"
    ):
        load_config("tiny", ["train.batch_size=eight"])
    with pytest.raises(ValueError, match="key=value"):
        parse_overrides(["train.batch_size"])


def test_flags_set_fields_as_they_are():
    """A flag's value is the field's value, not a --set string read again as YAML: a folder
    named 2024 or off stays that name (YAML would read an int and a boolean)."""
    import argparse

    from cmdvideo.cli.train import _flag_fields

    for name in ("2024", "off", "1e-4"):
        args = argparse.Namespace(
            data=name, max_steps=3, stage="motion", init=None, text_encoder="builtin", frames=False
        )
        config = load_config("tiny", ["train.batch_size=2"], _flag_fields(args))
        assert config.data.source == name and config.train.max_steps == 3
        assert config.motion.text_encoder == "builtin" and config.train.batch_size == 2
