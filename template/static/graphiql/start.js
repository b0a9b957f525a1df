// Starts GraphiQL against the endpoint that served this page: same origin, so the
// session cookie goes along and the Origin check passes.
const fetcher = GraphiQL.createFetcher({ url: window.location.pathname });
ReactDOM.createRoot(document.getElementById("graphiql")).render(
  React.createElement(GraphiQL, { fetcher, defaultEditorToolsVisibility: true }),
);
