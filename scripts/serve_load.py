#!/usr/bin/env python3
"""Load for an OpenAI-compatible /v1/completions server (`cca serve`, or any other): CONCURRENCY clients
send REQUESTS streamed completions in all, and the script prints requests/s, generated tokens/s and time to
first token. Python's standard library only, so it runs wherever the server does.

Tokens are counted from max_tokens: without stop strings a completion ends only at its length, and the
script checks that every one did (finish_reason "length").
"""
import argparse
import http.client
import json
import statistics
import threading
import time
import urllib.parse


def stream_one(url, body):
    """Sends one streamed completion; returns (seconds to the first text, seconds in all, finish reason)."""
    parts = urllib.parse.urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=600)
    start = time.perf_counter()
    connection.request("POST", "/v1/completions", body=json.dumps(body), headers={"Content-Type": "application/json"})
    response = connection.getresponse()
    if response.status != 200:
        raise RuntimeError(f"HTTP {response.status}: {response.read()[:200]!r}")
    first, reason, buffer = None, None, b""
    while True:
        piece = response.read1(65536)
        if not piece:
            break
        buffer += piece
        while b"\n\n" in buffer:
            event, buffer = buffer.split(b"\n\n", 1)
            data = event.removeprefix(b"data: ")
            if data == b"[DONE]":
                continue
            choice = json.loads(data)["choices"][0]
            if first is None and choice["text"]:
                first = time.perf_counter() - start
            reason = choice["finish_reason"] or reason
    connection.close()
    return first, time.perf_counter() - start, reason


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", default="http://127.0.0.1:8000")
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--requests", type=int, default=32)
    parser.add_argument("--max-tokens", type=int, default=64)
    parser.add_argument("--prompt", default="The quick brown fox jumps over the lazy dog. ")
    parser.add_argument("--temperature", type=float, default=1.0)
    args = parser.parse_args()

    results, failures, lock = [], [], threading.Lock()
    next_request = iter(range(args.requests))

    def client():
        while True:
            with lock:
                index = next(next_request, None)
            if index is None:
                return
            body = {"prompt": args.prompt, "max_tokens": args.max_tokens, "temperature": args.temperature,
                    "seed": index, "stream": True}
            try:
                outcome = stream_one(args.url, body)
            except Exception as error:  # reported below, after the others finish
                with lock:
                    failures.append(str(error))
                continue
            with lock:
                results.append(outcome)

    start = time.perf_counter()
    threads = [threading.Thread(target=client) for _ in range(args.concurrency)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - start
    if failures:
        raise SystemExit(f"{len(failures)} requests failed, first: {failures[0]}")
    if any(reason != "length" for _, _, reason in results):
        raise SystemExit("a completion ended before max_tokens, so tokens cannot be counted from it")
    first = sorted(r[0] for r in results)
    tokens = args.max_tokens * len(results)
    print(f"concurrency {args.concurrency}: {len(results)} requests of {args.max_tokens} tokens in {elapsed:.2f} s: "
          f"{len(results) / elapsed:.2f} requests/s, {tokens / elapsed:.0f} tokens/s, "
          f"first token median {statistics.median(first) * 1e3:.1f} ms (p90 {first[int(0.9 * (len(first) - 1))] * 1e3:.1f} ms), "
          f"request median {statistics.median(r[1] for r in results) * 1e3:.0f} ms")


if __name__ == "__main__":
    main()
