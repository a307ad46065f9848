import 'graphiql/setup-workers/vite';
import 'graphiql/style.css';
import { createGraphiQLFetcher } from '@graphiql/toolkit';
import { GraphiQL } from 'graphiql';
import { StrictMode } from 'react';
import { createRoot } from 'react-dom/client';
import { loadSession } from '../jobs/session';

const httpUrl = new URL('/graphql', window.location.href).toString();

/**
 * Queries and mutations over HTTP; subscriptions over graphql-ws on the same path. GraphiQL passes
 * the headers editor's JSON as graphql-ws connectionParams, so the `authorization` entry
 * authenticates subscriptions exactly as it does HTTP requests (src/server/ws.ts reads that key).
 */
const fetcher = createGraphiQLFetcher({
  url: httpUrl,
  subscriptionUrl: httpUrl.replace(/^http/, 'ws'),
  // Apollo answers with single JSON responses; multipart/mixed incremental delivery is not used.
  enableIncrementalDelivery: false,
});

// Signed in on the jobs page? Reuse its token; otherwise leave a hint to replace.
const session = loadSession();
const defaultHeaders = JSON.stringify({ authorization: `Bearer ${session?.token ?? '<accessToken from issueToken>'}` }, null, 2);

const defaultQuery = `# Sluice GraphQL IDE
#
# 1. Run Token with your client id and secret, then put its accessToken
#    in the Headers tab below: {"authorization": "Bearer <accessToken>"}.
#    Signed in on the jobs page (/)? The header already holds that token.
#    The same header authenticates subscriptions (graphql-ws).
# 2. Run Me, or explore the schema with the Docs button (top left).
#
# Uploads (uploadFile, validateFile) are multipart requests, which
# GraphiQL cannot send: use the jobs page at / or \`npx sluice upload\`.

mutation Token {
  issueToken(clientId: "admin", clientSecret: "<secret>") {
    accessToken
    expiresAt
    roles
  }
}

query Me {
  me { clientId roles tokenExpiresAt }
}

subscription Heartbeat {
  heartbeat(intervalMs: 1000, count: 5) { seq at }
}
`;

createRoot(document.getElementById('graphiql')!).render(
  <StrictMode>
    <GraphiQL fetcher={fetcher} defaultQuery={defaultQuery} defaultHeaders={defaultHeaders} defaultEditorToolsVisibility="headers" />
  </StrictMode>,
);
