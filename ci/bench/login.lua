-- wrk script: a correct login, i.e. one bcrypt verification per request.
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"query":"mutation { login(email: \\"bench@example.com\\", password: \\"correct horse battery\\") { user { email } } }"}'
