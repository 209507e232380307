#!/usr/bin/env python3
"""Print a compact outline of captured OTLP/JSON fixtures (span tree, keys, logs).

Usage: summarize.py PREFIX_OR_FILE... [--values]   (PREFIX.traces.json / PREFIX.logs.json)
"""
import json
import os
import sys


def val(v):
    if not v:
        return None
    (k, x), = v.items()
    if k == "arrayValue":
        return [val(i) for i in x.get("values", [])]
    if k == "kvlistValue":
        return {i["key"]: val(i.get("value")) for i in x.get("values", [])}
    return x


def short(x, n=90):
    s = json.dumps(x, ensure_ascii=False) if not isinstance(x, str) else x
    return s if len(s) <= n else s[:n] + "…"


def attrs(a, values):
    if values:
        return "\n".join(f"        {i['key']} = {short(val(i.get('value')))}" for i in a or [])
    return "        " + ", ".join(i["key"] for i in a or [])


def main():
    values = "--values" in sys.argv
    for arg in [a for a in sys.argv[1:] if not a.startswith("--")]:
        prefix = arg[:-len(".traces.json")] if arg.endswith(".traces.json") else arg
        t = json.load(open(prefix + ".traces.json"))
        spans = []
        for rs in t.get("resourceSpans", []):
            res = {i["key"]: val(i["value"]) for i in rs.get("resource", {}).get("attributes", [])}
            for ss in rs.get("scopeSpans", []):
                for s in ss.get("spans", []):
                    spans.append((ss.get("scope", {}).get("name"), s, res))
        ids = {s["spanId"]: s for _, s, _ in spans}
        print(f"== {prefix}: {len(spans)} spans, traces {len({s['traceId'] for _, s, _ in spans})}")
        def depth(s):
            d = 0
            while s.get("parentSpanId") in ids:
                s = ids[s["parentSpanId"]]
                d += 1
            return d
        for scope, s, res in sorted(spans, key=lambda x: int(x[1]["startTimeUnixNano"])):
            print(f"{'  ' * depth(s)}- {s['name']!r} kind={s.get('kind')} scope={scope}")
            print(attrs(s.get("attributes"), values))
            for e in s.get("events", []):
                print(f"        event {e['name']}: " + ", ".join(i["key"] for i in e.get("attributes", [])))
        if os.path.exists(prefix + ".logs.json"):
            l = json.load(open(prefix + ".logs.json"))
            for rl in l.get("resourceLogs", []):
                for sl in rl.get("scopeLogs", []):
                    for r in sl.get("logRecords", []):
                        sid = r.get("spanId")
                        print(f"  log scope={sl.get('scope', {}).get('name')} event={r.get('eventName')} "
                              f"span={ids[sid]['name'] if sid in ids else sid} body={short(val(r.get('body')), 60)}")
                        print(attrs(r.get("attributes"), values))


if __name__ == "__main__":
    main()
