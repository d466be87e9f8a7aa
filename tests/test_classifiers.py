"""Expression classifiers: the seed's parameter count, shapes at 48 and 64, registry and rebuild from arch."""

from __future__ import annotations

import pytest
import torch

from feraug.nets.classifiers import (
    CLASSIFIERS,
    ExpressionClassifier,
    build_classifier,
    classifier_from_arch,
    count_parameters,
)

# Small variants keep the shape tests fast; the full-width nets are built once below for the counts.
FAST_KWARGS = {"simple": {}, "surreal": {}, "vgg": {"width": 0.25, "fc": 64}, "fast": {}, "resnet": {}}


def test_simple_matches_seed_keras_parameter_count() -> None:
    net = build_classifier("simple")
    # Keras summary in Birenbaum: total 5,905,863 = trainable 5,902,151 + non-trainable 3,712 (BN moving stats).
    assert count_parameters(net) == 5_902_151
    assert count_parameters(net, keras=True) == 5_905_863
    assert sum(p.numel() for p in net.parameters() if p.requires_grad) == 5_902_151


def test_seed_layer_table_shapes() -> None:
    """46 -> 23 -> 11 -> 5 -> 2 spatially, 2048 flattened features into dense_1 (1,049,088 params)."""
    net = build_classifier("simple")
    sizes = []
    x = torch.zeros(1, 1, 48, 48)
    for layer in net.trunk:
        x = layer(x)
        if isinstance(layer, torch.nn.MaxPool2d):
            sizes.append(x.shape[-1])
    assert sizes == [23, 11, 5, 2]
    assert net.trunk[0](torch.zeros(1, 1, 48, 48)).shape[-1] == 46
    dense_1 = net.neck[0]
    assert dense_1.in_features == 2048 and count_parameters(dense_1) == 1_049_088


def test_vgg_at_40_is_the_reference_network() -> None:
    """Khaireddin & Chen's net on 40x40 crops: 4.68M conv + 3,840 BN + FC 2048->4096->4096->7."""
    net = build_classifier("vgg", size=40)
    conv = 640 + 36_928 + 73_856 + 147_584 + 295_168 + 590_080 + 1_180_160 + 2_359_808
    bn = 2 * 2 * (64 + 128 + 256 + 512)
    fc = (2048 * 4096 + 4096) + (4096 * 4096 + 4096) + (4096 * 7 + 7)
    assert count_parameters(net) == conv + bn + fc == 29_890_759


def test_parameter_counts_in_the_readme() -> None:
    """The README's table at 48x48 (PyTorch counts: BN running statistics are buffers, not parameters)."""
    assert count_parameters(build_classifier("surreal")) == 4_860_935
    assert count_parameters(build_classifier("vgg")) == 40_376_519
    assert count_parameters(build_classifier("fast")) == 308_791
    assert count_parameters(build_classifier("resnet")) == 306_127


@pytest.mark.parametrize("name", sorted(CLASSIFIERS))
@pytest.mark.parametrize("size", [48, 64])
def test_logits_and_features_shapes(name: str, size: int) -> None:
    net = build_classifier(name, size=size, **FAST_KWARGS[name]).eval()
    x = torch.rand(3, 1, size, size) * 2 - 1
    with torch.no_grad():
        logits, feats = net(x), net.features(x)
    assert isinstance(net, ExpressionClassifier)
    assert logits.shape == (3, 7)
    assert feats.shape == (3, net.feature_dim)
    assert torch.allclose(net.head(feats), logits)


def test_feature_dims_of_full_nets() -> None:
    assert build_classifier("simple").feature_dim == 128
    assert build_classifier("surreal").feature_dim == 256
    assert build_classifier("vgg", width=0.25).feature_dim == 4096


def test_wrong_input_size_is_a_clear_error() -> None:
    net = build_classifier("surreal")
    with pytest.raises(ValueError, match=r"expects input \[N, 1, 48, 48\]"):
        net(torch.zeros(2, 1, 64, 64))


def test_too_small_size_fails_at_construction() -> None:
    with pytest.raises(ValueError, match="needs size >= 18"):
        build_classifier("simple", size=16)


def test_unknown_name_lists_valid_ones() -> None:
    with pytest.raises(ValueError, match="unknown classifier 'nope'") as err:
        build_classifier("nope")
    for name in CLASSIFIERS:
        assert name in str(err.value)


@pytest.mark.parametrize("name", sorted(CLASSIFIERS))
def test_rebuild_from_arch(name: str) -> None:
    net = build_classifier(name, n_classes=5, size=64, **FAST_KWARGS[name])
    assert net.arch["name"] == name and net.arch["kwargs"]["n_classes"] == 5
    rebuilt = classifier_from_arch(net.arch)
    assert type(rebuilt) is type(net)
    assert rebuilt.arch == net.arch
    assert count_parameters(rebuilt, keras=True) == count_parameters(net, keras=True)
    rebuilt.load_state_dict(net.state_dict())  # same tensor shapes throughout


def test_surreal_batch_norm_option_and_more_classes() -> None:
    net = build_classifier("surreal", n_classes=3, in_channels=3, norm="batch").eval()
    assert any(isinstance(m, torch.nn.BatchNorm2d) for m in net.modules())
    assert net(torch.zeros(2, 3, 48, 48)).shape == (2, 3)
    with pytest.raises(ValueError, match="unknown norm"):
        build_classifier("surreal", norm="group")


def test_fast_work_size_reads_48_and_computes_at_fewer_pixels() -> None:
    """``work_size`` resizes inside the net: same input and interface, fewer pixels per conv, arch rebuilds it,
    and a net without it keeps the arch it always had (checkpoints saved before the option still load)."""
    small = build_classifier("fast", work_size=40)
    x = torch.rand(3, 1, 48, 48) * 2 - 1
    assert small(x).shape == (3, 7) and small.features(x).shape == (3, small.feature_dim)
    assert "work_size" not in build_classifier("fast").arch["kwargs"]
    rebuilt = classifier_from_arch(small.arch)
    rebuilt.load_state_dict(small.state_dict())
    small.eval(), rebuilt.eval()
    assert torch.equal(small(x), rebuilt(x))
    # the first layer is the resize: every convolution after it runs at 40x40 and below
    stem_in = small.trunk[0](x)
    assert stem_in.shape == (3, 1, 40, 40)
    with pytest.raises(ValueError, match="size"):
        build_classifier("fast", work_size=4)
