"""Benchmark of the log collectors: lines/s parsed and normalized per format (through the file reader, as
``soc ingest`` runs, and the per-line work alone on lines in memory), and syslog over UDP on 127.0.0.1 at a fixed
offered rate (received vs sent).

    python bench/logs.py                       # all formats, 200,000 lines each, then UDP at 20,000 msg/s for 5 s
    python bench/logs.py --lines 50000 --formats syslog nginx-access --rate 40000 --seconds 3
"""

from __future__ import annotations

import argparse
import multiprocessing
import random
import socket
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from collectors.logs.base import Diagnostics
from collectors.logs.listener import SyslogConfig, SyslogSource
from collectors.logs.parsers import get_parser
from collectors.logs.reader import LineProcessor
from collectors.logs.tail import FileSource

IPS = [f"10.{a}.{b}.{c}" for a, b, c in zip(range(0, 250, 7), range(3, 250, 11), range(1, 250, 5), strict=False)]
USERS = ["alice", "bob", "root", "admin", "oracle", "deploy", "postgres", "www-data"]
PATHS = ["/", "/index.html", "/login", "/api/v1/items?id=42", "/wp-login.php", "/static/app.js", "/.env"]
AGENTS = ["Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 Chrome/120.0 Safari/537.36", "curl/8.5.0", "sqlmap/1.7"]
DOMAINS = ["example.com", "intranet.gov.example", "evil.example.net", "updates.vendor.example", "cdn.example.org"]


def _auth(i: int, r: random.Random) -> str:
    ip, user, port = r.choice(IPS), r.choice(USERS), r.randint(1024, 65535)
    kind = i % 4
    head = f"Nov 25 07:{i // 60 % 60:02d}:{i % 60:02d} web01 "
    if kind == 0:
        return f"{head}sshd[{i % 30000}]: Failed password for {user} from {ip} port {port} ssh2"
    if kind == 1:
        return f"{head}sshd[{i % 30000}]: Accepted publickey for {user} from {ip} port {port} ssh2: RSA SHA256:Xq1"
    if kind == 2:
        return f"{head}sudo:    {user} : TTY=pts/0 ; PWD=/home/{user} ; USER=root ; COMMAND=/usr/bin/systemctl restart"
    return f"{head}CRON[{i % 30000}]: pam_unix(cron:session): session opened for user root(uid=0) by (uid=0)"


def _access(i: int, r: random.Random) -> str:
    return (
        f'{r.choice(IPS)} - - [25/Nov/2026:07:{i // 60 % 60:02d}:{i % 60:02d} +0000] "{r.choice(["GET", "POST"])} '
        f'{r.choice(PATHS)} HTTP/1.1" {r.choice([200, 200, 304, 404, 500])} {r.randint(100, 90000)} '
        f'"https://example.com/" "{r.choice(AGENTS)}"'
    )


def _firewall(i: int, r: random.Random) -> str:
    return (
        f"Nov 25 07:{i // 60 % 60:02d}:{i % 60:02d} fw01 kernel: [{i}.000001] FW-DROP: IN=eth0 OUT= "
        f"MAC=00:11:22:33:44:55:66:77:88:99:aa:bb:08:00 SRC={r.choice(IPS)} DST=10.0.0.5 LEN=60 TOS=0x00 PREC=0x00 "
        f"TTL=52 ID={i % 65535} DF PROTO=TCP SPT={r.randint(1024, 65535)} DPT={r.choice([22, 80, 443, 3389])} "
        "WINDOW=64240 RES=0x00 SYN URGP=0"
    )


def _bind(i: int, r: random.Random) -> str:
    return (
        f"25-Nov-2026 07:{i // 60 % 60:02d}:{i % 60:02d}.{i % 1000:03d} queries: info: client @0x7f3a2c0 "
        f"{r.choice(IPS)}#{r.randint(1024, 65535)} ({(d := r.choice(DOMAINS))}): query: {d} IN "
        f"{r.choice(['A', 'AAAA', 'TXT', 'MX'])} +E(0)K (10.0.0.1)"
    )


def _squid(i: int, r: random.Random) -> str:
    return (
        f"{1795592606 + i // 100}.{i % 1000:03d} {r.randint(0, 900):6d} {r.choice(IPS)} TCP_MISS/200 "
        f"{r.randint(300, 90000)} GET http://{r.choice(DOMAINS)}{r.choice(PATHS)} - HIER_DIRECT/93.184.216.34 text/html"
    )


def _auditd(i: int, r: random.Random) -> str:
    return (
        f"type=SYSCALL msg=audit({1795592606 + i // 100}.{i % 1000:03d}:{i}): arch=c000003e syscall=59 success=yes "
        f"exit=0 a0=55d5 a1=55d6 a2=55d7 a3=0 items=2 ppid=1000 pid={i % 30000} auid=1000 uid=0 gid=0 euid=0 suid=0 "
        'fsuid=0 egid=0 sgid=0 fsgid=0 tty=pts0 ses=3 comm="cat" exe="/usr/bin/cat" subj=unconfined key="shadow"'
    )


def _eve(i: int, r: random.Random) -> str:
    return (
        f'{{"timestamp":"2026-11-25T07:{i // 60 % 60:02d}:{i % 60:02d}.{i % 1000000:06d}+0000","flow_id":{i},'
        f'"in_iface":"eth0","event_type":"dns","src_ip":"{r.choice(IPS)}","src_port":{r.randint(1024, 65535)},'
        f'"dest_ip":"10.0.0.1","dest_port":53,"proto":"UDP","dns":{{"type":"query","id":{i % 65535},'
        f'"rrname":"{r.choice(DOMAINS)}","rrtype":"A","tx_id":0}}}}'
    )


def _zeek(i: int, r: random.Random) -> str:
    return (
        f'{{"ts":{1795592606 + i / 1000:.6f},"uid":"C{i:017d}","id.orig_h":"{r.choice(IPS)}",'
        f'"id.orig_p":{r.randint(1024, 65535)},"id.resp_h":"10.0.0.1","id.resp_p":53,"proto":"udp",'
        f'"trans_id":{i % 65535},"query":"{r.choice(DOMAINS)}","qclass":1,"qclass_name":"C_INTERNET","qtype":1,'
        '"qtype_name":"A","rcode":0,"rcode_name":"NOERROR","AA":false,"TC":false,"RD":true,"RA":true}'
    )


def _nginx_error(i: int, r: random.Random) -> str:
    return (
        f"2026/11/25 07:{i // 60 % 60:02d}:{i % 60:02d} [error] 812#812: *{i} open() "
        f'"/usr/share/nginx/html{r.choice(PATHS)}" failed (2: No such file or directory), client: {r.choice(IPS)}, '
        f'server: localhost, request: "GET {r.choice(PATHS)} HTTP/1.1", host: "web01"'
    )


GENERATORS: dict[str, Callable[[int, random.Random], str]] = {
    "syslog": _auth,
    "nginx-access": _access,
    "iptables": _firewall,
    "bind": _bind,
    "squid": _squid,
    "auditd": _auditd,
    "suricata-eve": _eve,
    "zeek-json": _zeek,
    "nginx-error": _nginx_error,
}


def bench_in_memory(fmt: str, lines: list[bytes], repeats: int = 3) -> float:
    """Lines/s of CPU of the per-line work alone (decode, parse, annotate, count): best of ``repeats``."""
    best = 0.0
    for _ in range(repeats):
        processor = LineProcessor(get_parser(fmt, year=2026, log="dns"), Diagnostics(), fmt, fmt)
        process = processor.process
        cpu = time.process_time()
        for offset, line in enumerate(lines):
            process(offset, line)
        best = max(best, len(lines) / (time.process_time() - cpu))
    return best


def bench_format(fmt: str, lines: int, folder: Path) -> tuple[int, float, float, int, float]:
    r = random.Random(7)
    path = folder / f"{fmt}.log"
    generate = GENERATORS[fmt]
    text = [generate(i, r) for i in range(lines)]
    path.write_text("".join(line + "\n" for line in text))
    in_memory = bench_in_memory(fmt, [line.encode() for line in text[:50_000]])
    diag = Diagnostics()
    started, cpu = time.perf_counter(), time.process_time()
    count = sum(1 for _ in FileSource(path, fmt, diagnostics=diag, options={"year": 2026, "log": "dns"}))
    seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
    return count, seconds, cpu, sum(diag.stats.malformed.values()), in_memory


def _send(address: tuple[str, int], rate: int, seconds: float, ready: Any) -> None:
    """Offer ``rate`` messages/s for ``seconds``, paced per millisecond, from another process."""
    r = random.Random(3)
    messages = [f"<38>{_auth(i, r)}".encode() for i in range(2000)]
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    total = int(rate * seconds)
    ready.wait()
    started = time.perf_counter()
    sent = 0
    while sent < total:
        due = min(total, int((time.perf_counter() - started) * rate) + 1)
        while sent < due:
            sock.sendto(messages[sent % 2000], address)
            sent += 1
        time.sleep(0.0005)


def bench_udp(rate: int, seconds: float, receiver: str = "process") -> tuple[int, int, int, int, float]:
    """Offer ``rate`` msg/s for ``seconds``; parse until everything received is parsed. Returns sent, received
    (by the listener, kernel drops excluded), parsed, dropped in our queues, seconds until the last was parsed."""
    config = SyslogConfig(
        host="127.0.0.1", udp_port=0, tcp_port=None, queue_size=1_000_000, queue_bytes=512 << 20, udp_receiver=receiver
    )
    source = SyslogSource(config).start()
    assert source.udp_address is not None
    ready = multiprocessing.Event()
    sender = multiprocessing.Process(target=_send, args=(source.udp_address, rate, seconds, ready), daemon=True)
    sender.start()
    started = time.perf_counter()
    ready.set()
    total = int(rate * seconds)
    parsed = 0
    quiet_since = None
    while time.perf_counter() < started + seconds + 60:
        got = len(source.poll(timeout=0.05))
        parsed += got
        if got or sender.is_alive():
            quiet_since = None
        elif quiet_since is None:
            quiet_since = time.perf_counter()
        elif time.perf_counter() - quiet_since > 1.0:  # sender done and nothing more for a second
            break
    elapsed = (quiet_since or time.perf_counter()) - started
    sender.join(timeout=5)
    source.close()
    return total, source.received, parsed, sum(source.stats.dropped.values()), elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--lines", type=int, default=200_000)
    parser.add_argument("--formats", nargs="*", default=list(GENERATORS))
    parser.add_argument("--rate", type=int, default=20_000, help="UDP messages per second offered (0: skip)")
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--udp-receiver", choices=["process", "thread"], default="process")
    args = parser.parse_args()
    # CPU time is reported beside wall time: on a shared machine the wall clock also counts other people's work
    print("| format | lines | wall s | lines/s (wall) | CPU s | lines/s (CPU) | malformed | in memory, lines/s (CPU) |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    with tempfile.TemporaryDirectory() as tmp:
        for fmt in args.formats:
            count, seconds, cpu, bad, in_memory = bench_format(fmt, args.lines, Path(tmp))
            print(
                f"| {fmt} | {count:,} | {seconds:.2f} | {count / seconds:,.0f} | {cpu:.2f} | {count / cpu:,.0f} "
                f"| {bad} | {in_memory:,.0f} |",
                flush=True,
            )
    if args.rate:
        sent, received, parsed, dropped, elapsed = bench_udp(args.rate, args.seconds, args.udp_receiver)
        lost = sent - parsed
        print()
        print("| syslog UDP offered rate | sent | received | queue drops | parsed | lost | loss % | all parsed after |")
        print("|---:|---:|---:|---:|---:|---:|---:|---:|")
        print(f"| {args.rate:,}/s for {args.seconds:g} s ({args.udp_receiver}) | {sent:,} | {received:,} | "
              f"{dropped:,} | {parsed:,} | "
              f"{lost:,} | {100 * lost / sent:.3f} | {elapsed:.1f} s |")  # fmt: skip


if __name__ == "__main__":
    main()
