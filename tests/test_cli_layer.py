"""The command-line layer: argparse only in ``emomon/cli/``, a parser that loads
no heavy library, one ``FLAGS`` map per verb, and library errors that name
parameters shown with the flags of the verb that ran."""

from __future__ import annotations

import argparse
import importlib
import subprocess
import sys
from pathlib import Path

import pytest

import emomon
from emomon.cli import VERBS, build_parser, main
from emomon.errors import EmomonError

PACKAGE = Path(emomon.__file__).resolve().parent
#: numpy too: `emomon --help` and `--version` in 0.1 s instead of 0.3 s (issue 14).
#: ray: never imported, so never initialised, unless --executor ray asks for it.
HEAVY = ("numpy", "scipy", "torch", "onnxruntime", "pylsl", "zmq", "brainflow", "mne",
         "aiohttp", "ray")  # fmt: skip


def test_only_the_cli_package_mentions_argparse():
    found = {
        p.relative_to(PACKAGE).as_posix()
        for p in PACKAGE.rglob("*.py")
        if "argparse" in p.read_text(encoding="utf-8")
    }
    assert "cli/__init__.py" in found  # the scan sees the package
    assert sorted(f for f in found if not f.startswith("cli/")) == []


def test_building_the_parser_imports_no_heavy_library():
    code = (
        "import sys, emomon.cli\n"
        "emomon.cli.build_parser().parse_args(['stream', '--model', 'm.onnx'])\n"
        f"print(','.join(m for m in {HEAVY!r} if m in sys.modules))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == ""


def _subcommands(parser: argparse.ArgumentParser):
    for action in parser._actions:  # argparse keeps its sub-parsers only here
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield name, sub
                yield from _subcommands(sub)


def test_every_verb_module_declares_its_flags():
    for name in VERBS:
        module = importlib.import_module(f"emomon.cli.{name}")
        if not hasattr(module, "add_parser"):  # one verb: registered by add_verb
            assert module.HELP, name
            assert callable(module.add_arguments), name
            assert callable(module.run), name
        for param, flag in module.FLAGS.items():
            assert param.isidentifier(), (name, param)
            assert flag.startswith("--") or flag.isupper(), (name, flag)
    leaves = {
        name: sub.get_default("flags")
        for name, sub in _subcommands(build_parser())
        if sub.get_default("func") is not None
    }
    assert set(leaves) >= {"list", "synth", "check", "train", "evaluate", "export"}
    assert set(leaves) >= {"info", "replay", "stream", "recover", "listen", "keys"}
    assert set(leaves) >= {"broker", "demo", "dashboard"}
    assert all(isinstance(flags, dict) for flags in leaves.values())
    assert leaves["stream"]["hop_s"] == "--hop"
    assert leaves["train"]["out_dir"] == "--out"
    assert leaves["dashboard"]["insecure"] == "--insecure"


def test_the_source_registry_gives_stream_its_choices():
    from emomon.cli.stream import SOURCE_OPTIONS
    from emomon.realtime.sources import SOURCES, LSLSource, source_class

    stream = dict(_subcommands(build_parser()))["stream"]
    source = next(a for a in stream._actions if a.dest == "source")
    assert list(source.choices) == list(SOURCES) == ["lsl", "brainflow", "replay"]
    assert source.default == "lsl"
    assert all(entry.description in source.help for entry in SOURCES.values())
    assert set(SOURCE_OPTIONS) == set(SOURCES)
    assert source_class("lsl") is LSLSource
    with pytest.raises(EmomonError, match="unknown source 'wifi'.*lsl, brainflow"):
        source_class("wifi")


def test_library_errors_name_parameters_and_the_cli_names_flags():
    from emomon.cli.stream import FLAGS
    from emomon.realtime.pipeline import PipelineSettings

    with pytest.raises(EmomonError) as err:
        PipelineSettings(hop_s=0)
    assert str(err.value) == "hop_s must be > 0, got 0"
    assert err.value.render(FLAGS) == "--hop must be > 0, got 0"


def test_main_renders_with_the_map_of_the_verb_that_ran(capsys):
    assert main(["listen", "--curve-secret", "c.key_secret", "--duration", "1"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [
        "emomon: error: Curve needs both --curve-secret (this client's .key_secret) "
        "and --curve-server (the publisher's public .key)"
    ]


def test_keys_names_its_flags_when_the_pair_exists(tmp_path, capsys):
    assert main(["keys", "--out", str(tmp_path), "--name", "server"]) == 0
    capsys.readouterr()
    assert main(["keys", "--out", str(tmp_path), "--name", "server"]) == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert "server.key exists already; choose another --name or --out" in line


def test_a_value_with_braces_stays_text(tmp_path):
    from emomon.cli.stream import FLAGS
    from emomon.realtime.record import RecordError, check_record_path

    target = tmp_path / "s{1}.fif"
    target.write_bytes(b"")
    with pytest.raises(RecordError) as err:
        check_record_path(target)
    assert "s{1}.fif exists; pass overwrite=True to replace it" in str(err.value)
    assert "s{1}.fif exists; pass --overwrite to replace it" in err.value.render(FLAGS)


def test_library_warnings_print_with_the_flags_of_the_verb_that_ran(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    from emomon.realtime import publish

    def insecure_run(args: argparse.Namespace) -> int:
        publish.warn_insecure("tcp://0.0.0.0:5599")
        publish.warn_insecure("tcp://0.0.0.0:5599")  # once per process
        return 0

    monkeypatch.setattr(publish, "_warned_insecure", False)
    monkeypatch.setattr("emomon.cli.broker.run", insecure_run)
    assert main(["broker", "--insecure"]) == 0
    assert capsys.readouterr().err.splitlines() == [
        "emomon: warning: tcp://0.0.0.0:5599 is not loopback and not encrypted "
        "(--insecure): anyone on the network can read the predictions"
    ]
    # the library itself names its parameter and prints nothing
    (record,) = [r for r in caplog.records if r.name == "emomon.realtime.publish"]
    assert record.levelname == "WARNING"
    assert "(insecure=True)" in record.getMessage()
    monkeypatch.setattr(publish, "_warned_insecure", False)
    publish.warn_insecure("tcp://0.0.0.0:5599")  # outside main: no printer left
    assert capsys.readouterr().err == ""


def test_an_error_from_a_worker_process_still_names_its_flag():
    """Errors cross process boundaries (training workers) by pickle; the
    parameters they name survive, so the CLI still renders its flags."""
    import pickle

    from emomon.errors import ConfigError
    from emomon.realtime.messages import MessageError

    err = ConfigError("{cache_dir} is a file", params=("cache_dir",))
    back = pickle.loads(pickle.dumps(err))
    assert type(back) is ConfigError
    assert str(back) == "cache_dir is a file"
    assert back.render({"cache_dir": "--cache-dir"}) == "--cache-dir is a file"
    msg = pickle.loads(pickle.dumps(MessageError("bad\nframe")))
    assert str(msg) == "bad frame"
