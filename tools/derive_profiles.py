#!/usr/bin/env python3
"""Derive the compact built-in hourly profiles of suanwang from real series.

Reads (from SUANWANG_DATA, default ../shared/data):
  carbon/lwa_ger_ci.csv         Germany, 15-min grid carbon intensity (ENTSO-E via
                                Wiesner et al., "Let's Wait Awhile", Middleware '21)
  carbon/lwa_gb_production.csv  Great Britain, 30-min generation by fuel (same source)

Writes crates/topology/src/profiles.rs with two 12 x 24 tables (month x UTC hour),
each normalised to mean 1 over all 288 cells:
  CARBON_SHAPE     carbon intensity / its mean (Germany)
  RENEWABLE_SHAPE  (wind + solar) share of generation / its mean (Great Britain)
Timestamps in the files are UTC. Only averages leave this script: no row is copied.

Run: python3 tools/derive_profiles.py && cargo fmt
"""
import csv, os, sys
from datetime import datetime

data = os.environ.get("SUANWANG_DATA", os.path.join(os.path.dirname(__file__), "..", "..", "shared", "data"))
out = os.path.join(os.path.dirname(__file__), "..", "crates", "topology", "src", "profiles.rs")

def table(rows):
    sums = [[0.0] * 24 for _ in range(12)]
    counts = [[0] * 24 for _ in range(12)]
    for ts, v in rows:
        sums[ts.month - 1][ts.hour] += v
        counts[ts.month - 1][ts.hour] += 1
    cells = [[sums[m][h] / counts[m][h] for h in range(24)] for m in range(12)]
    mean = sum(sum(r) for r in cells) / 288.0
    return [[c / mean for c in r] for r in cells], counts

def read_ci(path):
    with open(path) as f:
        r = csv.reader(f); next(r)
        for row in r:
            yield datetime.strptime(row[0], "%Y-%m-%d %H:%M:%S"), float(row[1])

def read_renewable_share(path):
    with open(path) as f:
        r = csv.reader(f); head = next(r)
        gen_cols = [i for i, h in enumerate(head) if h and h not in ("FR", "NL", "IE", "BE")]
        ren_cols = [i for i, h in enumerate(head) if h in ("Solar", "Wind Offshore", "Wind Onshore")]
        for row in r:
            total = sum(float(row[i] or 0) for i in gen_cols)
            if total <= 0:
                continue
            yield datetime.strptime(row[0], "%Y-%m-%d %H:%M:%S"), sum(float(row[i] or 0) for i in ren_cols) / total

carbon, cc = table(read_ci(os.path.join(data, "carbon", "lwa_ger_ci.csv")))
renew, rc = table(read_renewable_share(os.path.join(data, "carbon", "lwa_gb_production.csv")))

def emit(name, t, doc):
    lines = [doc, f"pub const {name}: [[f32; 24]; 12] = ["]
    for m in range(12):
        lines.append("    [" + ", ".join(f"{v:.4}" for v in t[m]) + "],")
    lines.append("];")
    return "\n".join(lines)

with open(out, "w") as f:
    f.write("//! Built-in hourly shapes, derived by `tools/derive_profiles.py` from real series.\n")
    f.write("//! Generated file: edit the script, not this file. Each table is month x UTC hour,\n")
    f.write("//! normalised to mean 1 over its 288 cells; only averages are kept.\n\n")
    f.write("/// Longitude (degrees east) of the grid the carbon shape was measured on (Germany).\n")
    f.write("pub const CARBON_SHAPE_LON: f64 = 10.4;\n")
    f.write("/// Longitude (degrees east) of the grid the renewable shape was measured on (Great Britain).\n")
    f.write("pub const RENEWABLE_SHAPE_LON: f64 = -2.0;\n\n")
    f.write(emit("CARBON_SHAPE", carbon,
        "/// Germany's grid carbon intensity (ENTSO-E, 2019-12-20..2021-01-09, 15-min, via\n"
        "/// Wiesner et al., \"Let's Wait Awhile\", Middleware '21), normalised.") + "\n\n")
    f.write(emit("RENEWABLE_SHAPE", renew,
        "/// Great Britain's wind + solar share of generation (ENTSO-E, 2019-12-20..2021-01-09,\n"
        "/// 30-min, via the same source), normalised.") + "\n")
print("wrote", out, "min/max carbon", min(map(min, carbon)), max(map(max, carbon)),
      "renewable", min(map(min, renew)), max(map(max, renew)))
