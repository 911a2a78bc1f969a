"""Each log format on realistic sample lines: exact ECS fields and Sigma log source; sniffing picks the format."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from collectors.logs.base import ParseError, SkipLine
from collectors.logs.parsers import PARSERS, get_parser, sniff_format
from soc.core.model import Event, get_field


def parse(fmt: str, line: str, **options: Any) -> Event:
    return get_parser(fmt, **options).parse(line)


def fields(event: Event, *names: str) -> dict[str, Any]:
    return {name: get_field(event, name) for name in names}


LS_AUTH = {"product": "linux", "category": None, "service": "auth"}
AUTH = "user.name", "source.ip", "source.port", "event.outcome", "event.action", "event.category"


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        (
            "Nov 25 07:43:26 web01 sshd[2211]: Accepted publickey for alice from 10.0.0.5 port 51234 ssh2: RSA "
            "SHA256:Xq1",
            ("alice", "10.0.0.5", 51234, "success", "ssh_login", ["authentication"]),
        ),
        (
            "Nov 25 07:43:27 web01 sshd[2212]: Failed password for invalid user admin from 203.0.113.9 port 40022 ssh2",
            ("admin", "203.0.113.9", 40022, "failure", "ssh_login", ["authentication"]),
        ),
        (
            "Nov 25 07:43:28 web01 sshd[2212]: Failed password for root from 2001:db8::7 port 40030 ssh2",
            ("root", "2001:db8::7", 40030, "failure", "ssh_login", ["authentication"]),
        ),
        (
            "Nov 25 07:43:29 web01 sshd[2213]: Invalid user oracle from 203.0.113.9 port 40024",
            ("oracle", "203.0.113.9", 40024, "failure", "ssh_invalid_user", ["authentication"]),
        ),
        (
            "Nov 25 07:43:30 web01 sshd[2214]: error: maximum authentication attempts exceeded for root from "
            "203.0.113.9 port 40030 ssh2 [preauth]",
            ("root", "203.0.113.9", 40030, "failure", "ssh_max_attempts", ["authentication"]),
        ),
        (
            "Nov 25 07:43:31 web01 sshd[2215]: pam_unix(sshd:auth): authentication failure; logname= uid=0 euid=0 "
            "tty=ssh ruser= rhost=203.0.113.9  user=root",
            ("root", "203.0.113.9", None, "failure", "pam_authentication_failure", ["authentication"]),
        ),
        (
            "Nov 25 07:44:03 web01 su[3310]: FAILED SU (to root) bob on pts/1",
            ("bob", None, None, "failure", "su", ["authentication"]),
        ),
        (
            "Nov 25 07:44:04 web01 su[3311]: Successful su for root by alice",
            ("alice", None, None, "success", "su", ["authentication"]),
        ),
        (
            "Nov 25 07:44:05 web01 su[3312]: pam_unix(su:session): session opened for user root(uid=0) by "
            "alice(uid=1000)",
            ("alice", None, None, "success", "session_opened", ["session"]),
        ),
    ],
)
def test_linux_auth_login_lines(line: str, expected: tuple[Any, ...]) -> None:
    event = parse("syslog", line, year=2026)
    assert tuple(fields(event, *AUTH).values()) == expected
    assert event["soc"]["logsource"] == LS_AUTH
    assert event["event"]["dataset"] == "system.auth"
    assert event["host"]["name"] == "web01"
    assert event["@timestamp"].startswith("2026-11-25T07:4")


def test_host_names_never_land_in_ip_fields() -> None:
    resolved = parse(
        "syslog", "Nov 25 07:43:26 web01 sshd[9]: Failed password for root from scanner.example.net port 22 ssh2"
    )
    assert resolved["source"] == {"address": "scanner.example.net", "domain": "scanner.example.net", "port": 22}
    named = parse("nginx-access", 'proxy.example.org - - [25/Nov/2026:07:43:26 +0000] "GET / HTTP/1.1" 200 1')
    assert named["source"] == {"address": "proxy.example.org", "domain": "proxy.example.org"}
    scoped = parse("syslog", "Nov 25 07:43:26 web01 sshd[9]: Accepted password for a from fe80::1%eth0 port 22 ssh2")
    assert scoped["source"]["ip"] == "fe80::1"


def test_sudo_lines() -> None:
    ok = parse(
        "syslog",
        "Nov 25 07:44:01 web01 sudo:    alice : TTY=pts/0 ; PWD=/home/alice ; USER=root ; "
        "COMMAND=/usr/bin/cat /etc/shadow",
        year=2026,
    )
    assert fields(ok, "user.name", "user.effective.name", "process.command_line", "event.outcome") == {
        "user.name": "alice",
        "user.effective.name": "root",
        "process.command_line": "/usr/bin/cat /etc/shadow",
        "event.outcome": "success",
    }
    assert ok["soc"]["logsource"] == LS_AUTH
    refused = parse(
        "syslog",
        "Nov 25 07:44:02 web01 sudo:      bob : user NOT in sudoers ; TTY=pts/1 ; PWD=/home/bob ; USER=root ; "
        "COMMAND=/bin/bash",
        year=2026,
    )
    assert refused["event"]["outcome"] == "failure"
    assert refused["system"]["auth"]["sudo"]["error"] == "user NOT in sudoers"


def test_account_changes() -> None:
    created = parse(
        "syslog",
        "Nov 25 07:44:05 web01 useradd[3400]: new user: name=backdoor, UID=1002, GID=1002, home=/home/backdoor, "
        "shell=/bin/bash, from=/dev/pts/0",
        year=2026,
    )
    assert fields(created, "user.name", "user.id", "group.id", "event.action", "event.type") == {
        "user.name": "backdoor",
        "user.id": "1002",
        "group.id": "1002",
        "event.action": "user_created",
        "event.type": ["user", "creation"],
    }
    added = parse("syslog", "Nov 25 07:44:06 web01 usermod[3401]: add 'backdoor' to group 'sudo'", year=2026)
    assert fields(added, "user.name", "group.name", "event.action") == {
        "user.name": "backdoor",
        "group.name": "sudo",
        "event.action": "user_added_to_group",
    }
    changed = parse("syslog", "Nov 25 07:44:07 web01 usermod[3402]: change user 'backdoor' password", year=2026)
    assert changed["event"]["action"] == "user_changed"
    assert created["soc"]["logsource"] == added["soc"]["logsource"] == LS_AUTH


def test_syslog_headers() -> None:
    rfc5424 = parse(
        "syslog",
        '<86>1 2026-11-25T08:43:26.123456+01:00 web01 sshd 2211 ID47 [meta sequenceId="1" note="a\\"b\\]c"] '
        "\ufeffFailed password for root from 198.51.100.7 port 5555 ssh2",
    )
    assert rfc5424["@timestamp"] == "2026-11-25T07:43:26.123456Z"
    assert rfc5424["log"]["syslog"] == {
        "version": "1",
        "msgid": "ID47",
        "structured_data": {"meta": {"sequenceId": "1", "note": 'a"b]c'}},
        "priority": 86,
        "facility": {"code": 10},
        "severity": {"code": 6},
        "appname": "sshd",
        "hostname": "web01",
        "procid": "2211",
    }
    assert rfc5424["message"].startswith("Failed password")
    assert rfc5424["user"]["name"] == "root"
    plain = parse("syslog", "Nov  5 07:45:01 web01 CRON[5000]: (root) CMD (run-parts /etc/cron.hourly)", year=2026)
    assert plain["@timestamp"] == "2026-11-05T07:45:01.000000Z"
    assert plain["soc"]["logsource"] == {"product": "linux", "category": None, "service": "cron"}
    assert plain["process"] == {"name": "CRON", "pid": 5000, "command_line": "run-parts /etc/cron.hourly"}
    assert plain["user"] == {"name": "root"}
    other = parse("syslog", "Nov 25 07:45:01 web01 systemd[1]: Started session-5.scope.", year=2026)
    assert other["soc"]["logsource"] == {"product": "linux", "category": None, "service": "syslog"}
    local = parse("syslog", "Nov 25 07:45:01 web01 app: hello", year=2026, timezone="+01:00")
    assert local["@timestamp"] == "2026-11-25T06:45:01.000000Z"
    iso = parse("syslog", "2026-11-25T07:45:01.250000+00:00 web01 systemd[1]: Started Session 5 of user alice.")
    assert iso["@timestamp"] == "2026-11-25T07:45:01.250000Z"
    with pytest.raises(ParseError) as bad:
        parse("syslog", "<999>Nov 25 07:45:01 web01 app: hello")
    assert bad.value.reason == "bad_priority"


def test_syslog_year_rollover() -> None:
    from collectors.logs.parsers.base import syslog_year

    assert syslog_year(12, datetime(2027, 1, 2, tzinfo=UTC)) == 2026
    assert syslog_year(1, datetime(2027, 1, 2, tzinfo=UTC)) == 2027


def test_auditd_records() -> None:
    syscall = parse(
        "auditd",
        "type=SYSCALL msg=audit(1795592606.123:456): arch=c000003e syscall=59 success=yes exit=0 a0=55d5 a1=55d6 "
        "a2=55d7 a3=0 items=2 ppid=1000 pid=1234 auid=1000 uid=0 gid=0 euid=0 suid=0 fsuid=0 egid=0 sgid=0 fsgid=0 "
        'tty=pts0 ses=3 comm="cat" exe="/usr/bin/cat" subj=unconfined key="shadow"',
    )
    assert syscall["@timestamp"] == "2026-11-25T07:43:26.123000Z"
    assert syscall["soc"]["logsource"] == {"product": "linux", "category": None, "service": "auditd"}
    assert fields(syscall, "process.executable", "process.name", "process.pid", "process.parent.pid") == {
        "process.executable": "/usr/bin/cat",
        "process.name": "cat",
        "process.pid": 1234,
        "process.parent.pid": 1000,
    }
    assert syscall["auditd"]["log"]["record_type"] == "SYSCALL"
    assert syscall["auditd"]["log"]["sequence"] == 456
    assert syscall["auditd"]["log"]["syscall"] == "59"
    assert syscall["tags"] == ["shadow"]
    assert syscall["event"]["outcome"] == "success"
    execve = parse("auditd", 'type=EXECVE msg=audit(1795592606.123:456): argc=2 a0="cat" a1="/etc/shadow"')
    assert execve["auditd"]["log"]["a1"] == "/etc/shadow"
    pam = parse(
        "auditd",
        "node=web01 type=USER_AUTH msg=audit(1795592607.001:460): pid=2212 uid=0 auid=4294967295 ses=4294967295 "
        'msg=\'op=PAM:authentication grantors=? acct="admin" exe="/usr/sbin/sshd" hostname=203.0.113.9 '
        "addr=203.0.113.9 terminal=ssh res=failed'",
    )
    assert fields(pam, "user.name", "source.ip", "event.outcome", "host.name", "event.action") == {
        "user.name": "admin",
        "source.ip": "203.0.113.9",
        "event.outcome": "failure",
        "host.name": "web01",
        "event.action": "user_auth",
    }


WEB = (
    "source.ip",
    "http.request.method",
    "url.original",
    "http.response.status_code",
    "user_agent.original",
    "@timestamp",
)


def test_access_logs() -> None:
    line = (
        '10.0.0.5 - - [25/Nov/2026:08:43:26 +0100] "GET /index.php?id=1%27%20OR%201=1 HTTP/1.1" 200 612 '
        '"https://example.org/" "sqlmap/1.7.2#stable (https://sqlmap.org)"'
    )
    expected = {
        "source.ip": "10.0.0.5",
        "http.request.method": "GET",
        "url.original": "/index.php?id=1%27%20OR%201=1",
        "http.response.status_code": 200,
        "user_agent.original": "sqlmap/1.7.2#stable (https://sqlmap.org)",
        "@timestamp": "2026-11-25T07:43:26.000000Z",
    }
    for fmt, product in (("nginx-access", "nginx"), ("apache-access", "apache"), ("web-access", None)):
        event = parse(fmt, line)
        assert fields(event, *WEB) == expected
        assert event["soc"]["logsource"] == {"product": product, "category": "webserver", "service": None}
        assert event["http"]["request"]["referrer"] == "https://example.org/"
        assert event["url"]["query"] == "id=1%27%20OR%201=1"
        assert event["url"]["extension"] == "php"
    common = parse("apache-access", '192.0.2.1 - frank [10/Oct/2026:13:55:36 -0700] "POST /login HTTP/1.0" 401 -')
    assert fields(common, "user.name", "http.response.status_code", "event.outcome", "@timestamp") == {
        "user.name": "frank",
        "http.response.status_code": 401,
        "event.outcome": "failure",
        "@timestamp": "2026-10-10T20:55:36.000000Z",
    }
    junk = parse(
        "nginx-access", '203.0.113.9 - - [25/Nov/2026:07:43:26 +0000] "\\x16\\x03\\x01\\x02\\x00" 400 157 "-" "-"'
    )
    assert "url" not in junk and junk["http"]["response"]["status_code"] == 400
    unescaped = parse(
        "web-access",
        '192.168.105.83 - - [11/Jul/2018:09:32:27 +0300] "GET /a?x="><script>foo</script> HTTP/1.1" 404 997',
    )
    assert unescaped["url"]["original"] == '/a?x="><script>foo</script>'
    escaped = parse(
        "apache-access", '10.0.0.7 - - [25/Nov/2026:07:43:26 +0000] "GET /q HTTP/1.1" 200 5 "-" "a \\"b\\" c"'
    )
    assert escaped["user_agent"]["original"] == 'a "b" c'


def test_error_logs() -> None:
    nginx = parse(
        "nginx-error",
        '2026/11/25 07:43:26 [error] 812#812: *5 open() "/usr/share/nginx/html/.env" failed (2: No such file or '
        'directory), client: 10.0.0.5, server: localhost, request: "GET /.env HTTP/1.1", host: "web01"',
    )
    assert fields(nginx, "source.ip", "url.original", "http.request.method", "log.level", "@timestamp") == {
        "source.ip": "10.0.0.5",
        "url.original": "/.env",
        "http.request.method": "GET",
        "log.level": "error",
        "@timestamp": "2026-11-25T07:43:26.000000Z",
    }
    assert nginx["soc"]["logsource"] == {"product": "nginx", "category": "webserver", "service": None}
    apache = parse(
        "apache-error",
        "[Wed Nov 25 07:43:26.123456 2026] [core:error] [pid 1234:tid 140000] [client 10.0.0.5:51234] AH00126: "
        "Invalid URI in request GET /../../etc/passwd HTTP/1.1",
    )
    assert fields(apache, "source.ip", "source.port", "log.level", "error.code", "@timestamp") == {
        "source.ip": "10.0.0.5",
        "source.port": 51234,
        "log.level": "error",
        "error.code": "AH00126",
        "@timestamp": "2026-11-25T07:43:26.123456Z",
    }
    assert apache["soc"]["logsource"] == {"product": "apache", "category": "webserver", "service": None}
    old = parse("apache-error", "[Wed Nov 25 07:43:26 2026] [error] [client 10.0.0.5] File does not exist: /var/www/x")
    assert fields(old, "source.ip", "log.level") == {"source.ip": "10.0.0.5", "log.level": "error"}


def test_iis_w3c_follows_fields_directive() -> None:
    parser = get_parser("iis")
    with pytest.raises(SkipLine):
        parser.parse("#Fields: date time c-ip cs-method cs-uri-stem cs-uri-query sc-status cs(User-Agent)")
    event = parser.parse("2019-09-03 10:13:36 10.0.2.17 GET /erp/conn.aspx proxy&port=3389 200 Mozilla/5.0+(X11)")
    assert fields(event, "source.ip", "url.original", "http.response.status_code", "user_agent.original") == {
        "source.ip": "10.0.2.17",
        "url.original": "/erp/conn.aspx?proxy&port=3389",
        "http.response.status_code": 200,
        "user_agent.original": "Mozilla/5.0 (X11)",
    }
    with pytest.raises(ParseError) as short:
        parser.parse("2019-09-03 10:13:36 10.0.2.17 GET")
    assert short.value.reason == "field_count"


def test_netfilter_lines() -> None:
    for fmt in ("syslog", "iptables"):
        event = parse(
            fmt,
            "<4>Nov 25 07:43:26 fw01 kernel: [123456.789012] FW-DROP: IN=eth0 OUT= "
            "MAC=00:11:22:33:44:55:66:77:88:99:aa:bb:08:00 SRC=203.0.113.9 DST=10.0.0.5 LEN=60 TOS=0x00 PREC=0x00 "
            "TTL=52 ID=54321 DF PROTO=TCP SPT=51234 DPT=22 WINDOW=64240 RES=0x00 SYN URGP=0",
            year=2026,
        )
        assert event["soc"]["logsource"] == {"product": "linux", "category": "firewall", "service": None}
        assert fields(
            event,
            "source.ip",
            "source.port",
            "destination.ip",
            "destination.port",
            "network.transport",
            "event.action",
            "observer.ingress.interface.name",
            "rule.name",
        ) == {
            "source.ip": "203.0.113.9",
            "source.port": 51234,
            "destination.ip": "10.0.0.5",
            "destination.port": 22,
            "network.transport": "tcp",
            "event.action": "denied",
            "observer.ingress.interface.name": "eth0",
            "rule.name": "FW-DROP",
        }
        assert event["iptables"]["flags"] == ["DF", "SYN"]
        assert event["iptables"]["ttl"] == "52"
    nft = parse(
        "iptables",
        "Nov 25 07:43:27 fw01 kernel: nft-accept IN=ens3 OUT=ens4 SRC=10.0.0.5 DST=93.184.216.34 LEN=84 "
        "PROTO=ICMP TYPE=8 CODE=0 ID=1 SEQ=1",
        year=2026,
    )
    assert fields(nft, "event.action", "network.transport", "observer.egress.interface.name") == {
        "event.action": "allowed",
        "network.transport": "icmp",
        "observer.egress.interface.name": "ens4",
    }
    with pytest.raises(ParseError) as other:
        parse("iptables", "Nov 25 07:43:27 fw01 kernel: usb 1-1: new high-speed USB device", year=2026)
    assert other.value.reason == "not_netfilter"


DNS = "source.ip", "source.port", "dns.question.name", "dns.question.type", "destination.ip"


def test_bind_query_logs() -> None:
    expected = {
        "source.ip": "10.0.0.5",
        "source.port": 53422,
        "dns.question.name": "evil.example.com",
        "dns.question.type": "TXT",
        "destination.ip": "10.0.0.1",
    }
    native = parse(
        "bind",
        "25-Nov-2026 07:43:26.123 queries: info: client @0x7f3a2c0 10.0.0.5#53422 (evil.example.com): "
        "query: evil.example.com IN TXT +E(0)K (10.0.0.1)",
    )
    assert fields(native, *DNS) == expected
    assert native["@timestamp"] == "2026-11-25T07:43:26.123000Z"
    assert native["soc"]["logsource"] == {"product": None, "category": "dns", "service": None}
    via_syslog = parse(
        "syslog",
        "Nov 25 07:43:26 ns1 named[812]: client @0x7f3a2c0 10.0.0.5#53422 (evil.example.com): query: "
        "evil.example.com IN TXT +E(0)K (10.0.0.1)",
        year=2026,
    )
    assert fields(via_syslog, *DNS) == expected
    assert via_syslog["soc"]["logsource"]["category"] == "dns"
    old = parse("bind", "25-Nov-2026 07:43:26 client 10.0.0.6#1234: query: www.example.org IN AAAA + (10.0.0.1)")
    assert old["dns"]["question"] == {"name": "www.example.org", "class": "IN", "type": "AAAA"}


def test_squid_access() -> None:
    hit = parse(
        "squid",
        "1795592606.123    145 10.0.0.5 TCP_MISS/200 4310 GET http://example.com/a?b=1 - "
        "HIER_DIRECT/93.184.216.34 text/html",
    )
    assert hit["soc"]["logsource"] == {"product": "squid", "category": "proxy", "service": None}
    assert fields(
        hit, "@timestamp", "source.ip", "url.original", "url.domain", "http.request.method",
        "http.response.status_code", "destination.ip", "event.action", "event.outcome",
    ) == {
        "@timestamp": "2026-11-25T07:43:26.123000Z",
        "source.ip": "10.0.0.5",
        "url.original": "http://example.com/a?b=1",
        "url.domain": "example.com",
        "http.request.method": "GET",
        "http.response.status_code": 200,
        "destination.ip": "93.184.216.34",
        "event.action": "TCP_MISS",
        "event.outcome": "success",
    }  # fmt: skip
    denied = parse(
        "squid",
        "1795592607.500      0 10.0.0.6 TCP_DENIED/403 3900 CONNECT evil.example.com:443 alice HIER_NONE/- text/html",
    )
    assert fields(denied, "url.domain", "url.port", "user.name", "event.outcome") == {
        "url.domain": "evil.example.com",
        "url.port": 443,
        "user.name": "alice",
        "event.outcome": "failure",
    }


def test_suricata_eve() -> None:
    alert = parse(
        "suricata-eve",
        '{"timestamp":"2026-11-25T08:43:26.123456+0100","flow_id":1,"in_iface":"eth0","event_type":"alert",'
        '"src_ip":"10.0.0.5","src_port":51234,"dest_ip":"203.0.113.9","dest_port":80,"proto":"TCP","alert":'
        '{"action":"allowed","gid":1,"signature_id":2100498,"rev":7,"signature":"GPL ATTACK_RESPONSE id check '
        'returned root","category":"Potentially Bad Traffic","severity":2}}',
    )
    assert alert["@timestamp"] == "2026-11-25T07:43:26.123456Z"
    assert alert["event"]["kind"] == "alert"
    assert alert["rule"]["id"] == "2100498"
    assert fields(alert, "source.ip", "destination.port", "network.transport") == {
        "source.ip": "10.0.0.5",
        "destination.port": 80,
        "network.transport": "tcp",
    }
    assert alert["soc"]["logsource"] == {"product": "suricata", "category": None, "service": "alert"}
    dns = parse(
        "suricata-eve",
        '{"timestamp":"2026-11-25T07:43:27.000000+0000","event_type":"dns","src_ip":"10.0.0.5","src_port":5353,'
        '"dest_ip":"10.0.0.1","dest_port":53,"proto":"UDP","dns":{"version":3,"type":"request","id":1,'
        '"queries":[{"rrname":"evil.example.com","rrtype":"TXT"}]}}',
    )
    assert dns["dns"]["question"] == {"name": "evil.example.com", "type": "TXT"}
    assert dns["soc"]["logsource"] == {"product": "suricata", "category": "dns", "service": "dns"}


def test_zeek_json_and_generic_json() -> None:
    zeek = parse(
        "zeek-json",
        '{"ts":1795592606.123456,"uid":"CHhAvVGS1DHFjwGM9","id.orig_h":"10.0.0.5","id.orig_p":53422,'
        '"id.resp_h":"10.0.0.1","id.resp_p":53,"proto":"udp","query":"evil.example.com","qtype_name":"TXT",'
        '"rcode_name":"NOERROR"}',
        log="dns",
    )
    assert zeek["@timestamp"] == "2026-11-25T07:43:26.123456Z"
    assert zeek["soc"]["logsource"] == {"product": "zeek", "category": None, "service": "dns"}
    assert zeek["zeek"]["dns"]["id"]["orig_h"] == "10.0.0.5"  # dotted Zeek names nested
    assert fields(zeek, "source.ip", "destination.port", "dns.question.name", "dns.question.type") == {
        "source.ip": "10.0.0.5",
        "destination.port": 53,
        "dns.question.name": "evil.example.com",
        "dns.question.type": "TXT",
    }
    generic = parse(
        "json", '{"time":"2026-11-25T07:43:26Z","level":"warn","user.name":"bob"}', product="myapp", service="audit"
    )
    assert generic["user"] == {"name": "bob"}
    assert generic["@timestamp"] == "2026-11-25T07:43:26.000000Z"
    assert generic["soc"]["logsource"] == {"product": "myapp", "category": None, "service": "audit"}
    untimed = parse("json", '{"msg": "no time here"}')
    assert untimed["@timestamp"] == untimed["event"]["ingested"]
    for line, reason in (("{not json", "bad_json"), ("[1, 2]", "not_object")):
        with pytest.raises(ParseError) as bad:
            parse("json", line)
        assert bad.value.reason == reason


SNIFF = {
    "syslog": "Nov 25 07:43:26 web01 sshd[2211]: Accepted password for alice from 10.0.0.5 port 51234 ssh2",
    "auditd": 'type=EXECVE msg=audit(1795592606.123:456): argc=2 a0="cat" a1="/etc/shadow"',
    "web-access": '10.0.0.5 - - [25/Nov/2026:07:43:26 +0000] "GET / HTTP/1.1" 200 612 "-" "curl/8.5.0"',
    "nginx-error": "2026/11/25 07:43:26 [error] 812#812: *5 open() failed, client: 10.0.0.5",
    "apache-error": "[Wed Nov 25 07:43:26.123456 2026] [core:error] [pid 1234] AH00126: Invalid URI",
    "iptables": "Nov 25 07:43:26 fw01 kernel: DROP IN=eth0 OUT= SRC=1.2.3.4 DST=10.0.0.5 PROTO=TCP SPT=1 DPT=22",
    "bind": "25-Nov-2026 07:43:26.123 queries: info: client 10.0.0.5#5342: query: a.example IN A + (10.0.0.1)",
    "squid": "1795592606.123    145 10.0.0.5 TCP_MISS/200 4310 GET http://example.com/ - HIER_DIRECT/1.2.3.4 text/html",
    "suricata-eve": '{"timestamp":"2026-11-25T07:43:27.000000+0000","event_type":"flow","src_ip":"10.0.0.5"}',
    "zeek-json": '{"ts":1795592606.1,"uid":"C1","id.orig_h":"10.0.0.5"}',
    "json": '{"message":"hello"}',
    "iis": "2019-09-03 10:13:36 10.0.2.15 GET /erp/conn.aspx - 80 - 10.0.2.17 - - 200 0 0 7",
}


@pytest.mark.parametrize("fmt", sorted(SNIFF))
def test_sniffing(fmt: str) -> None:
    assert sniff_format([SNIFF[fmt]] * 3) == fmt
    get_parser(fmt).parse(SNIFF[fmt])  # and the sniffed parser reads it


def test_every_registered_format_is_covered() -> None:
    assert set(PARSERS) == set(SNIFF) | {"nginx-access", "apache-access"}
    assert sniff_format(["hello world", "just text"]) is None


def test_real_tomcat_and_iis_logs(evtx_dir: Path) -> None:
    from collectors.logs.base import Diagnostics
    from collectors.logs.ingest import ingest_paths

    folder = evtx_dir / "Command and Control"
    diag = Diagnostics()
    events = list(ingest_paths([folder / "web_attack_and_isp_webshell_localhost_access_log.txt"], diagnostics=diag))
    assert len(events) == 2661
    assert diag.stats.malformed == {}
    assert diag.stats.utf8_replaced == 1
    assert events[0]["url"]["original"] == "/" and events[0]["@timestamp"] == "2018-07-11T05:41:28.000000Z"
    iis = list(ingest_paths([folder / "Tunna_rdp_tunnel_IIS.log"], diagnostics=diag))
    assert len(iis) == 4298
    assert sum(1 for e in iis if "proxy&port=" in e["url"].get("query", "")) > 0
    assert diag.stats.skipped == {"w3c_directive": 9, "blank": 1}
