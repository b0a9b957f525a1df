-- wrk script: the cheapest GraphQL query.
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"query":"{ apiVersion }"}'
