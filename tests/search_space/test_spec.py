"""ArchSpec: round trips, identity, and errors that name every bad field."""

from __future__ import annotations

import subprocess
import sys

import pytest

from search_space.errors import SpecError
from search_space.spec import ArchSpec

GOOD = {
    "scale": 4,
    "channels": 16,
    "body": [{"block": "conv", "repeat": 2, "args": {"post_act": "lrelu0.1"}},
             {"block": "esa", "args": {"variant": "rlfn"}}],
    "fusion": "aggregate",
}


def test_yaml_round_trip_and_stable_id():
    spec = ArchSpec.from_dict(GOOD)
    again = ArchSpec.from_yaml(spec.to_yaml())
    assert again == spec
    assert again.arch_id() == spec.arch_id()
    assert len(spec.arch_id()) == 12


def test_name_is_not_part_of_identity_but_content_is():
    spec = ArchSpec.from_dict(GOOD)
    assert ArchSpec.from_dict({**GOOD, "name": "mine"}).arch_id() == spec.arch_id()
    assert ArchSpec.from_dict({**GOOD, "channels": 24}).arch_id() != spec.arch_id()


def test_homogeneous_shorthand_and_string_stage():
    a = ArchSpec.from_dict({"scale": 2, "channels": 8, "body": {"block": "conv", "repeat": 3}})
    b = ArchSpec.from_dict({"scale": 2, "channels": 8, "body": ["conv", "conv", "conv"]})
    assert a.num_blocks() == b.num_blocks() == 3


def test_all_problems_reported_in_one_error():
    bad = {
        "scale": 5, "channels": 0, "colour": 3, "fusion": "concat",
        "body": [{"block": "rfdbb", "repeat": 1.5},
                 {"block": "esa", "args": {"variant": "esa3", "foo": 1}}],
    }
    with pytest.raises(SpecError) as info:
        ArchSpec.from_dict(bad)
    text = str(info.value)
    assert "8 problems" in text
    for fragment in ("colour: unknown key", "scale: 5 not allowed",
                     "channels: expected an integer >= 1",
                     "body[0].repeat", "body[0].block: 'rfdbb' is not a registered block",
                     "body[1].args.variant: 'esa3' not allowed; allowed: rfdn, rlfn, slim",
                     "body[1].args.foo: unknown option", "fusion: 'concat' not allowed"):
        assert fragment in text, fragment


@pytest.mark.parametrize("field, value, message", [
    ("channels", "sixteen", "channels: expected an integer"),
    ("scale", 2.0, "scale: expected an integer"),
    ("global_residual", "yes", "global_residual: expected true or false"),
    ("activation", "tanh", "activation: 'tanh' not allowed"),
    ("conv", "octconv", "conv: 'octconv' not allowed"),
])
def test_wrong_types_name_the_field(field, value, message):
    with pytest.raises(SpecError, match=message.replace("(", r"\(")):
        ArchSpec.from_dict({**GOOD, field: value})


def test_did_you_mean():
    with pytest.raises(SpecError, match=r"did you mean 'esa'"):
        ArchSpec.from_dict({**GOOD, "body": [{"block": "esaa"}]})


def test_option_type_checked_against_constructor_default():
    with pytest.raises(SpecError, match=r"body\[0\]\.args\.esa_channels: expected an integer"):
        ArchSpec.from_dict({**GOOD, "body": [{"block": "esa", "args": {"esa_channels": "x"}}]})


def test_nas_show_bad_yaml_exits_2_without_traceback(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("scale: 5\nchannels: -1\nbody: [{block: nope}]\n")
    r = subprocess.run([sys.executable, "-m", "nas.cli", "show", str(path)],
                       capture_output=True, text=True)
    assert r.returncode == 2
    assert "Traceback" not in r.stderr
    assert "scale: 5 not allowed" in r.stderr and "body[0].block" in r.stderr


def test_nas_show_unreadable_and_unparsable(tmp_path):
    from nas.cli import main

    assert main(["show", str(tmp_path / "missing.yaml")]) == 2
    bad = tmp_path / "broken.yaml"
    bad.write_text("scale: [4\n")
    assert main(["show", str(bad)]) == 2


def test_a_stage_width_is_validated_and_only_in_the_identity_when_set():
    base = {"scale": 4, "channels": 16, "body": [{"block": "rb", "repeat": 2}]}
    plain = ArchSpec.from_dict(base)
    assert "channels" not in plain.to_dict()["body"][0]  # no earlier spec changes identity
    own = ArchSpec.from_dict({**base, "body": [{"block": "rb", "repeat": 2, "channels": 24}]})
    assert own.body[0].channels == 24 and own.arch_id() != plain.arch_id()
    assert ArchSpec.from_dict(own.to_dict()) == own
    with pytest.raises(SpecError, match=r"body\[0\]\.channels: expected the stage's own width"):
        ArchSpec.from_dict({**base, "body": [{"block": "rb", "channels": 0}]})
    with pytest.raises(SpecError, match=r"body\[0\]\.channels: with head: 'none'"):
        ArchSpec.from_dict({**base, "head": "none", "body": [{"block": "spab", "channels": 8}]})
    with pytest.raises(SpecError, match=r"refine < 2 \(the number of blocks the fusion sees\)"):
        ArchSpec.from_dict({**base, "fusion": {"type": "hff", "refine": 2}, "body": [
            {"block": "rb"}, {"block": "rb", "repeat": 3, "channels": 8}]})



def test_a_bad_stage_width_hides_none_of_the_stages_other_problems():
    with pytest.raises(SpecError) as e:
        ArchSpec.from_dict({"scale": 4, "channels": 16,
                            "body": [{"block": "rbb", "channels": True}]})
    assert "body[0].channels: expected the stage's own width" in str(e.value)
    assert "body[0].block: 'rbb' is not a registered block" in str(e.value)
    with pytest.raises(SpecError) as e:  # an empty body does not repeat the fusion's problem
        ArchSpec.from_dict({"scale": 4, "channels": 16, "body": [], "fusion": 5})
    assert str(e.value).count("fusion") == 1
