"""The ``logs:`` section of soc.yaml: sources built from it, errors naming the entry."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from collectors.logs.config import LogConfigError, LogsConfig
from collectors.logs.evtx import EvtxSource
from collectors.logs.listener import SyslogSource
from collectors.logs.tail import FileSource


def test_sources_from_yaml(tmp_path: Path, evtx_dir: Path) -> None:
    log = tmp_path / "auth.log"
    log.write_text("Nov 25 07:43:26 web01 sshd[1]: Invalid user admin from 203.0.113.9 port 40022\n")
    text = f"""
    checkpoint: {tmp_path / "cp.json"}
    dead_letter: {tmp_path / "dead.jsonl"}
    sources:
      - {{type: file, path: {log}, format: syslog, follow: false}}
      - {{type: evtx, paths: ["{evtx_dir / "UACME_59_Sysmon.evtx"}"]}}
      - {{type: syslog, host: 127.0.0.1, udp_port: 0, tcp_port: 0, queue_size: 1000}}
    """
    config = LogsConfig.from_dict(yaml.safe_load(text))
    sources = config.open()
    assert [type(s) for s in sources] == [FileSource, EvtxSource, SyslogSource]
    file_source, evtx_source, syslog_source = sources
    assert [e["user"]["name"] for e in file_source] == ["admin"]
    file_source.commit()
    assert len(list(evtx_source)) == 7
    evtx_source.commit()
    assert isinstance(syslog_source, SyslogSource)
    with syslog_source:
        assert syslog_source.udp_address is not None and syslog_source.tcp_address is not None
    again = LogsConfig.from_dict(yaml.safe_load(text)).open()
    assert list(again[0]) == [] and list(again[1]) == []  # both resume after what was committed


def test_source_list_as_soc_yaml_holds_it(tmp_path: Path) -> None:
    items = [{"type": "file", "path": str(tmp_path / "a.log"), "format": "nginx-access"}]
    config = LogsConfig.from_list(items, checkpoint=str(tmp_path / "cp.json"))
    assert [type(s) for s in config.open()] == [FileSource]
    with pytest.raises(LogConfigError) as error:
        LogsConfig.from_list([{"type": "file", "path": "/x", "format": "nope"}])
    assert error.value.source == "collectors.logs[0].format"


@pytest.mark.parametrize(
    ("entry", "where", "words"),
    [
        ({"type": "file"}, "logs.sources[0]", "needs a 'path'"),
        ({"type": "file", "path": "/x", "format": "nope"}, "logs.sources[0].format", "unknown format"),
        ({"type": "ftp"}, "logs.sources[0].type", "unknown source type"),
        ({"type": "syslog", "udp": 514}, "logs.sources[0]", "unknown keys ['udp']"),
        ({"type": "evtx", "paths": []}, "logs.sources[0]", "list of 'paths'"),
    ],
)
def test_errors_name_the_entry(entry: dict[str, object], where: str, words: str) -> None:
    with pytest.raises(LogConfigError) as error:
        LogsConfig.from_dict({"sources": [entry]})
    assert error.value.source == where
    assert words in str(error.value)
