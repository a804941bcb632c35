"""The ``[encoders]`` and ``[report]`` tables and the ``encoder`` key of a check table."""

import pytest

from synthgate.config import load_config
from synthgate.errors import ConfigError

BASE = """
[datasets.toy]
real = "real"
generated = "generated"

[checks.duplicate_rate]
severity = "fail"
features = ["pixels"]
max_pair_fraction_excess = 0.05

[checks.texture_gap]
severity = "warn"
features = ["texture"]
max_median_abs_smd_excess = 0.5
"""


def _load(tmp_path, extra):
    path = tmp_path / "thresholds.toml"
    path.write_text(BASE + extra)
    return load_config(path)


def test_encoder_kind_weights_relative_to_file(tmp_path):
    config = _load(tmp_path, '[encoders.my_clip]\nkind = "open_clip"\nmodel = "ViT-B-16"\nweights = "models/ckpt.pt"\n')
    params = config.encoder_params("my_clip")
    assert params == {"kind": "open_clip", "model": "ViT-B-16", "weights": (tmp_path / "models" / "ckpt.pt").resolve()}
    assert "my_clip" in config.encoder_names()
    assert "efficientnet_lite0" in config.encoder_names()


def test_built_in_encoder_takes_weights_only(tmp_path):
    config = _load(tmp_path, '[encoders.resnext101_32x8d]\nweights = "w.pth"\nthreads = 2\n')
    assert config.encoder_params("resnext101_32x8d") == {"weights": (tmp_path / "w.pth").resolve(), "threads": 2}


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ('[encoders.mine]\nmodel = "ViT-B-16"\n', "encoders.mine is not a built-in encoder; a new encoder needs kind"),
        ('[encoders.efficientnet_lite]\n', "is not a built-in encoder (did you mean 'efficientnet_lite0'?)"),
        ('[encoders.mine]\nkind = "inception"\n', "encoders.mine.kind must be one of"),
        ('[encoders.biomedclip]\nweight = "x"\n', "unknown key encoders.biomedclip.weight (did you mean 'weights'?)"),
        ('[encoders.biomedclip]\nbatch_size = 0\n', "invalid [encoders.biomedclip] table: batch_size must be a positive integer; got 0"),
        ('[encoders.resnext101_32x8d]\nmodel = "ViT-B-16"\n', "model is a parameter of kind 'open_clip' only"),
        ('[encoders.mine]\nkind = "open_clip"\n', "model must be set for an encoder of kind 'open_clip'"),
        ('[encoders.pixels]\nkind = "open_clip"\n', "encoders.pixels must not reuse the name of a feature set"),
        ('[report]\nmanifold = "yes"\n', "report.manifold must be true or false"),
        ('[report]\nmanifold_features = "inception"\n', "report.manifold_features must be one of"),
        ('[report]\numap = true\n', "unknown key report.umap"),
    ],
)
def test_invalid_encoder_and_report_tables_name_the_key(tmp_path, table, message):
    with pytest.raises(ConfigError) as raised:
        _load(tmp_path, table)
    assert message in str(raised.value)


def test_embedding_check_adds_configured_encoders(tmp_path):
    extra = '[datasets.toy.checks.duplicate_rate]\nencoder = "biomedclip"\n'
    config = _load(tmp_path, extra)
    assert config.features("duplicate_rate", "toy") == ("pixels", "biomedclip")
    assert config.features("duplicate_rate", "other") == ("pixels",)
    assert config.features("duplicate_rate", "toy", encoder="efficientnet_lite0") == (
        "pixels", "biomedclip", "efficientnet_lite0",
    )
    # A check whose bounds were calibrated on one feature set ignores --encoder.
    assert config.features("texture_gap", "toy", encoder="efficientnet_lite0") == ("texture",)
    assert config.features("nearest_real_distance", "toy", encoder="efficientnet_lite0") == ()


def test_encoder_on_texture_check_rejected(tmp_path):
    with pytest.raises(ConfigError, match="checks.texture_gap.encoder is not valid: texture_gap does not take embeddings"):
        _load(tmp_path, '[datasets.toy.checks.texture_gap]\nencoder = "efficientnet_lite0"\n')
    with pytest.raises(ConfigError, match=r"texture_gap.features must be a non-empty list of .*\(texture_gap takes no encoders\)"):
        _load(tmp_path, '[datasets.toy.checks.texture_gap]\nfeatures = ["efficientnet_lite0"]\n')


def test_repeated_feature_set_rejected(tmp_path):
    with pytest.raises(ConfigError, match="duplicate_rate.features must name each feature set once; got pixels twice"):
        _load(tmp_path, '[datasets.toy.checks.duplicate_rate]\nfeatures = ["pixels", "pixels"]\n')


def test_unknown_encoder_lists_valid_ones(tmp_path):
    with pytest.raises(ConfigError, match="encoder must be one of .*efficientnet_lite0.*got 'biomedclipp'"):
        _load(tmp_path, '[datasets.toy.checks.duplicate_rate]\nencoder = "biomedclipp"\n')
    config = _load(tmp_path, "")
    with pytest.raises(ConfigError, match="encoder 'inception' is not a known encoder; valid: efficientnet_lite0"):
        config.encoder_params("inception")
    with pytest.raises(ConfigError, match="encoder 'efficientnet_lite_0' is not a known encoder \\(did you mean 'efficientnet_lite0'\\?\\)"):
        config.encoder_params("efficientnet_lite_0")


def test_report_table_defaults_to_pixels(tmp_path):
    config = _load(tmp_path, "")
    assert config.report == {"manifold": True, "manifold_features": "pixels"}
    config = _load(tmp_path, '[report]\nmanifold = false\nmanifold_features = "efficientnet_lite0"\n')
    assert config.report == {"manifold": False, "manifold_features": "efficientnet_lite0"}
