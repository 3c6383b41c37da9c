#!/usr/bin/env python3
"""Starts a command and prints the milliseconds until its Unix control socket answers: an HTTP GET /
with a 200 (HostVM's VMM API) or QMP's greeting (QEMU). One process probes both, so neither side's
figure includes a client program's own start-up (curl's alone is ~12 ms here).

Usage: ready-probe.py http|qmp SOCKET COMMAND...   (the command is killed once it answers)"""
import os, signal, socket, subprocess, sys, time

kind, path, command = sys.argv[1], sys.argv[2], sys.argv[3:]
request = b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n" if kind == "http" else b""
expect = b" 200 " if kind == "http" else b'"QMP"'
start = time.monotonic()
process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
try:
    while True:
        if process.poll() is not None:
            sys.exit(f"ready-probe: {command[0]} ended with {process.returncode} before it answered")
        if time.monotonic() - start > 10:
            sys.exit(f"ready-probe: {command[0]} did not answer within 10 s")
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
                s.settimeout(5)
                s.connect(path)
                s.sendall(request)
                answer = b""
                while expect not in answer:
                    chunk = s.recv(4096)
                    if not chunk:
                        break
                    answer += chunk
                if expect in answer:
                    print(round((time.monotonic() - start) * 1000, 1))
                    break
        except OSError:
            pass
        time.sleep(0.0005)
finally:
    process.send_signal(signal.SIGKILL)
    process.wait()
