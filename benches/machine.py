#!/usr/bin/env python3
"""Prints the machine a benchmark ran on as one JSON object (for benches/report.py)."""

import datetime
import json
import os
import platform
import re
import subprocess

info = open("/proc/cpuinfo", encoding="utf-8").read()
cpu = re.search(r"model name\s*:\s*(.*)", info)
isa = [f for f in ("avx2", "fma", "avx512f", "avx512_bf16", "amx_tile") if re.search(rf"\b{f}\b", info)]
rustc = subprocess.run(["rustc", "--version"], capture_output=True, text=True, check=False).stdout
print(json.dumps({
    "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
    "CPU": cpu.group(1).strip() if cpu else platform.processor(),
    "vCPUs": os.cpu_count(),
    "ISA": "+".join(isa) + ("" if "amx_tile" in isa else " (no AMX)"),
    "Linux": platform.release(),
    "rustc": rustc.split("(")[0].strip(),
}))
