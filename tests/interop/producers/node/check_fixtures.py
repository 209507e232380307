#!/usr/bin/env python3
"""Checks and summarises the Node producer fixtures (stdlib only).

Usage: python3 check_fixtures.py FIXTURE_DIR [NAME ...]
Names default to ai-sdk-6 ai-sdk-7 ai-sdk-7-legacy claude-code-logs claude-code-spans.
For each: parses FIXTURE_DIR/NAME.traces.json / NAME.logs.json, checks that what the
capture scripts provoke is there (tool call executed, final answer, session/user,
content, ids that join logs to spans), and prints size, span and log-record counts and
the span / event names. Exit status 1 when any check fails.
"""

import json
import os
import sys
from collections import Counter

DEFAULT = ["ai-sdk-6", "ai-sdk-7", "ai-sdk-7-legacy", "claude-code-logs", "claude-code-spans"]
FAILURES = []


def value(v):
    for k in ("stringValue", "boolValue", "doubleValue"):
        if k in v:
            return v[k]
    if "intValue" in v:
        return int(v["intValue"])
    if "arrayValue" in v:
        return [value(x) for x in v["arrayValue"].get("values", [])]
    if "kvlistValue" in v:
        return {x["key"]: value(x.get("value", {})) for x in v["kvlistValue"].get("values", [])}
    return None


def attrs(node):
    return {a["key"]: value(a.get("value", {})) for a in node.get("attributes", [])}


def load(path):
    if not os.path.exists(path):
        return None
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def spans_of(doc):
    out = []
    for rs in (doc or {}).get("resourceSpans", []):
        res = attrs(rs.get("resource", {}))
        for ss in rs.get("scopeSpans", []):
            scope = ss.get("scope", {}).get("name", "")
            for s in ss.get("spans", []):
                out.append(dict(s, _attrs=attrs(s), _scope=scope, _resource=res))
    return out


def logs_of(doc):
    out = []
    for rl in (doc or {}).get("resourceLogs", []):
        res = attrs(rl.get("resource", {}))
        for sl in rl.get("scopeLogs", []):
            scope = sl.get("scope", {}).get("name", "")
            for r in sl.get("logRecords", []):
                out.append(dict(r, _attrs=attrs(r), _scope=scope, _resource=res))
    return out


def check(name, cond, what):
    if not cond:
        FAILURES.append(f"{name}: {what}")
        print(f"  FAIL {what}")


def by_name(spans, prefix):
    return [s for s in spans if s["name"] == prefix or s["name"].startswith(prefix + " ")]


def check_ai6(name, spans, logs):
    check(name, {s["_scope"] for s in spans} == {"ai"}, "all spans from scope 'ai'")
    names = Counter(s["name"] for s in spans)
    for n, c in [("ai.generateText", 1), ("ai.generateText.doGenerate", 2), ("ai.toolCall", 2),
                 ("ai.streamText", 1), ("ai.streamText.doStream", 2)]:
        check(name, names[n] == c, f"{c} x {n} (got {names[n]})")
    for root in by_name(spans, "ai.generateText") + by_name(spans, "ai.streamText"):
        a = root["_attrs"]
        check(name, not root.get("parentSpanId"), f"{root['name']} is a root span")
        check(name, a.get("ai.telemetry.metadata.sessionId") == "session-123", f"{root['name']} metadata.sessionId")
        check(name, a.get("ai.telemetry.metadata.userId") == "user-42", f"{root['name']} metadata.userId")
        check(name, str(a.get("ai.telemetry.functionId", "")).startswith("weather-flow"), f"{root['name']} functionId")
        check(name, "sunny" in str(a.get("ai.response.text")), f"{root['name']} final text")
    for t in by_name(spans, "ai.toolCall"):
        check(name, "sunny, 22°C" in str(t["_attrs"].get("ai.toolCall.result")), "ai.toolCall.result")
    check(name, not logs, "no log records")


def check_ai7(name, spans, logs):
    check(name, {s["_scope"] for s in spans} == {"gen_ai"}, "all spans from scope 'gen_ai'")
    names = Counter(s["name"].split(" ")[0] for s in spans)
    for n, c in [("invoke_agent", 2), ("step", 4), ("chat", 4), ("execute_tool", 2)]:
        check(name, names[n] == c, f"{c} x {n} * (got {names[n]})")
    for root in by_name(spans, "invoke_agent"):
        a = root["_attrs"]
        check(name, not root.get("parentSpanId"), "invoke_agent is a root span")
        check(name, str(a.get("gen_ai.agent.name", "")).startswith("weather-flow"), "gen_ai.agent.name = functionId")
        check(name, a.get("ai.settings.context.sessionId") == "session-123", "ai.settings.context.sessionId")
        check(name, a.get("ai.settings.context.userId") == "user-42", "ai.settings.context.userId")
        check(name, "sunny" in str(a.get("gen_ai.output.messages")), "root gen_ai.output.messages")
    for t in by_name(spans, "execute_tool"):
        check(name, "sunny, 22°C" in str(t["_attrs"].get("gen_ai.tool.call.result")), "gen_ai.tool.call.result")
    check(name, not any(k.startswith("ai.telemetry.metadata") for s in spans for k in s["_attrs"]),
          "no ai.telemetry.metadata.* (dropped in AI SDK 7)")
    check(name, not logs, "no log records")


def check_ai7_legacy(name, spans, logs):
    check(name, {s["_scope"] for s in spans} == {"ai"}, "all spans from scope 'ai'")
    names = Counter(s["name"] for s in spans)
    for n, c in [("ai.generateText", 1), ("ai.generateText.doGenerate", 2), ("ai.toolCall", 2),
                 ("ai.streamText", 1), ("ai.streamText.doStream", 2)]:
        check(name, names[n] == c, f"{c} x {n} (got {names[n]})")
    for root in by_name(spans, "ai.generateText") + by_name(spans, "ai.streamText"):
        a = root["_attrs"]
        check(name, a.get("ai.settings.context.sessionId") == "session-123", f"{root['name']} context.sessionId")
        check(name, "sunny" in str(a.get("ai.response.text")), f"{root['name']} final text")
    check(name, not any(k.startswith("ai.telemetry.metadata") for s in spans for k in s["_attrs"]),
          "no ai.telemetry.metadata.*")
    check(name, not logs, "no log records")


CLAUDE_EVENTS = ["user_prompt", "api_request", "api_request_body", "api_response_body",
                 "tool_decision", "tool_result", "assistant_response"]


def check_claude_logs(name, spans, logs, want_spans):
    check(name, logs and all(l["_resource"].get("service.name") == "claude-code" for l in logs),
          "log records from service.name=claude-code")
    events = Counter(l["_attrs"].get("event.name") for l in logs)
    for e in CLAUDE_EVENTS:
        check(name, events[e] >= 1, f"event {e}")
    check(name, events["api_request"] == 2, f"2 api_request events (got {events['api_request']})")
    turn = [l for l in logs if "prompt.id" in l["_attrs"]]
    check(name, len({l["_attrs"]["prompt.id"] for l in turn}) == 1, "one prompt.id for the turn")
    check(name, len({l["_attrs"].get("session.id") for l in logs}) == 1, "one session.id")
    up = [l for l in logs if l["_attrs"].get("event.name") == "user_prompt"]
    check(name, up and "weather in Paris" in str(up[0]["_attrs"].get("prompt")), "user_prompt.prompt text")
    tr = [l for l in logs if l["_attrs"].get("event.name") == "tool_result"]
    check(name, tr and tr[0]["_attrs"].get("tool_name") == "Bash", "tool_result for Bash")
    ar = [l for l in logs if l["_attrs"].get("event.name") == "assistant_response"]
    check(name, ar and "sunny" in str(ar[0]["_attrs"].get("response")), "assistant_response text")
    if not want_spans:
        check(name, not spans, "no spans without the beta flag")
        return
    names = Counter(s["name"] for s in spans)
    for n, c in [("claude_code.interaction", 1), ("claude_code.llm_request", 2), ("claude_code.tool", 1),
                 ("claude_code.tool.blocked_on_user", 1), ("claude_code.tool.execution", 1)]:
        check(name, names[n] == c, f"{c} x {n} (got {names[n]})")
    inter = by_name(spans, "claude_code.interaction")
    if inter:
        tid = inter[0]["traceId"]
        check(name, all(l.get("traceId") == tid for l in turn), "turn log records carry the interaction trace id")
    span_req = {s["_attrs"].get("request_id") for s in by_name(spans, "claude_code.llm_request")}
    log_req = {l["_attrs"].get("request_id") for l in logs if l["_attrs"].get("event.name") == "api_request"}
    check(name, span_req == log_req and None not in span_req, "api_request.request_id = llm_request.request_id")
    tool = by_name(spans, "claude_code.tool")
    if tool and tr:
        check(name, tool[0]["_attrs"].get("tool_use_id") == tr[0]["_attrs"].get("tool_use_id"),
              "tool_result.tool_use_id = claude_code.tool tool_use_id")


CHECKS = {
    "ai-sdk-6": check_ai6,
    "ai-sdk-7": check_ai7,
    "ai-sdk-7-legacy": check_ai7_legacy,
    "claude-code-logs": lambda n, s, l: check_claude_logs(n, s, l, False),
    "claude-code-spans": lambda n, s, l: check_claude_logs(n, s, l, True),
}


def main():
    if len(sys.argv) < 2:
        print(__doc__)
        return 2
    d = sys.argv[1]
    for name in sys.argv[2:] or DEFAULT:
        tpath, lpath = os.path.join(d, name + ".traces.json"), os.path.join(d, name + ".logs.json")
        tdoc, ldoc = load(tpath), load(lpath)
        spans, logs = spans_of(tdoc), logs_of(ldoc)
        sizes = ", ".join(f"{os.path.basename(p)} {os.path.getsize(p)} B" for p in (tpath, lpath) if os.path.exists(p))
        print(f"{name}: {sizes or 'no files'}; {len(spans)} spans, {len(logs)} log records, "
              f"{len({s['traceId'] for s in spans})} traces")
        if spans:
            print("  spans: " + ", ".join(f"{n} x{c}" for n, c in Counter(s["name"] for s in spans).items()))
        if logs:
            ev = Counter(l["_attrs"].get("event.name") or str(value(l.get("body", {}))) for l in logs)
            print("  events: " + ", ".join(f"{n} x{c}" for n, c in ev.items()))
        if tdoc is None and ldoc is None:
            FAILURES.append(f"{name}: no fixture files")
            print("  FAIL no fixture files")
            continue
        CHECKS.get(name, lambda *a: None)(name, spans, logs)
    if FAILURES:
        print(f"{len(FAILURES)} check(s) failed")
        return 1
    print("all fixture checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
