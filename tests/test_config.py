
import pytest

from wavenet_edge import ConfigError, PRESETS, WaveNetConfig, preset


@pytest.mark.parametrize("name", list(PRESETS))
def test_json_roundtrip(name):
    cfg = preset(name)
    assert WaveNetConfig.from_json(cfg.to_json()) == cfg


@pytest.mark.parametrize("bad, msg", [
    (dict(dilations=[1, 0]), "dilation"),
    (dict(dilations=[]), "dilations"),
    (dict(kernel_size=1), "kernel_size"),
    (dict(residual_channels=0), "residual_channels"),
    (dict(skip_channels=-3), "skip_channels"),
    (dict(quantization_channels=128), "quantization_channels"),
    (dict(residual_scale=0.0), "residual_scale"),
    (dict(gc_cardinality=3), "global conditioning"),
    (dict(mulaw="alaw"), "mu-law"),
])
def test_validation_messages(bad, msg):
    with pytest.raises(ConfigError, match=msg):
        WaveNetConfig(**bad)


def test_unknown_key_and_bad_json(tmp_path):
    with pytest.raises(ConfigError, match="unknown config key"):
        WaveNetConfig.from_dict({"dilatons": [1]})
    p = tmp_path / "c.json"
    p.write_text("{not json")
    with pytest.raises(ConfigError, match="c.json"):
        WaveNetConfig.from_file(p)


def test_derived_properties_by_hand():
    cfg = WaveNetConfig(dilations=[1, 2, 4], kernel_size=2, residual_channels=2, dilation_channels=3,
                        skip_channels=4, end_channels=5)
    assert cfg.receptive_field == 8  # (k-1)·Σd + w
    # params: initial 256·2+2; per layer 2·(2·2·3+3) + (3·2+2) + (3·4+4) = 30+8+16 = 54; end 4·5+5 + 5·256+256
    assert cfg.parameter_count() == 514 + 3 * 54 + 25 + 1536
    # MACs: 3·2·(2·2)·3 + 2·3·2 + 3·3·4 + 4·5 + 5·256
    assert cfg.macs_per_sample() == 72 + 12 + 36 + 20 + 1280
    assert cfg.delay_line_bytes() == 7 * 2


def test_tensorflow_wavenet_preset_matches_published_defaults():
    cfg = preset("tensorflow-wavenet")
    assert cfg.dilations == tuple([2 ** i for i in range(10)] * 5)
    assert (cfg.residual_channels, cfg.dilation_channels, cfg.skip_channels) == (32, 32, 512)
    assert cfg.initial_filter_width == 32 and cfg.use_biases
    assert 1.4e6 < cfg.macs_per_sample() < 1.6e6
