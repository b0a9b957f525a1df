-- wrk script: the authenticated `me` query, with the session cookie from BENCH_COOKIE.
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Cookie"] = os.getenv("BENCH_COOKIE")
wrk.body = '{"query":"{ me { id email role } }"}'
