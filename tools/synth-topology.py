#!/usr/bin/env python3
"""Prints a synthetic topology of N sites for load and console benchmarks.

    tools/synth-topology.py 500 > /tmp/big.toml

It is cn-west (crates/topology/topologies/cn-west.toml) as it is, plus N - 8 copies
of its mainland sites, each moved up to ~1.5 degrees from its original and named
`<id>-<k>`. The copies keep the original's capacity, prices, tariff, carbon and
green share. A benchmark fixture, not a model of any real network.
"""

import random
import sys
import tomllib
from pathlib import Path


def value(v):
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return repr(v)
    if isinstance(v, str):
        return '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(v, list):
        return "[" + ", ".join(value(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{ " + ", ".join(f"{k} = {value(x)}" for k, x in v.items()) + " }"
    raise TypeError(type(v))


def main():
    if len(sys.argv) != 2 or not sys.argv[1].isdigit():
        sys.exit("usage: synth-topology.py N  (N >= 8)")
    n = int(sys.argv[1])
    source = Path(__file__).resolve().parent.parent / "crates/topology/topologies/cn-west.toml"
    text = source.read_text()
    base = tomllib.loads(text)
    mainland = [s for s in base["site"] if s["jurisdiction"] == "cn-mainland"]
    if n < len(base["site"]):
        sys.exit(f"N must be at least {len(base['site'])} (cn-west's own sites)")
    rng = random.Random(1)
    out = [text.replace('name = "cn-west"', f'name = "cn-west-synth-{n}"', 1), ""]
    for k in range(n - len(base["site"])):
        site = dict(mainland[k % len(mainland)])
        site["id"] = f"{site['id']}-{k // len(mainland) + 1}"
        site["name"] = f"{site['name']} {k // len(mainland) + 1}"
        if "name_zh" in site:
            site["name_zh"] = f"{site['name_zh']}{k // len(mainland) + 1}"
        loc = site["location"]
        site["location"] = {
            "lat": round(loc["lat"] + rng.uniform(-1.5, 1.5), 3),
            "lon": round(loc["lon"] + rng.uniform(-1.5, 1.5), 3),
        }
        out.append("[[site]]")
        out.extend(f"{key} = {value(v)}" for key, v in site.items())
        out.append("")
    print("\n".join(out))


if __name__ == "__main__":
    main()
