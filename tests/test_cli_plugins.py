"""The CLI's sub-commands come from entry points; a distribution seen twice must not break it."""

from importlib import metadata

from wavenet_edge import cli


def test_duplicate_entry_points_give_one_command_each(monkeypatch):
    real = list(metadata.entry_points(group="wavenet_edge.commands"))
    assert real, "no wavenet_edge.commands entry points: is the package installed?"
    # what importlib.metadata returns when both an editable install's metadata and the
    # checkout's wavenet_edge.egg-info are on sys.path
    monkeypatch.setattr(metadata, "entry_points", lambda group=None: real + real)
    names = [ep.name for ep in cli._entry_points()]
    assert sorted(names) == sorted({ep.name for ep in real})
    parser = cli.build_parser()  # argparse refuses a second sub-parser of the same name
    assert parser.parse_args(["info", "x.tflite"]).command == "info"
