import type { ApolloServerPlugin } from '@apollo/server';
import { ErrorCode, SluiceError } from '../../shared/errors';

/**
 * Subscriptions are served over graphql-ws only. Why a plugin: over HTTP, graphql-js would run the
 * subscription's resolver as a query and the client got a 200 with a masked INTERNAL_SERVER_ERROR
 * (GraphiQL does this when Run is pressed before its socket is up). This answers 400 BAD_REQUEST
 * naming the WebSocket endpoint instead, before anything executes.
 */
export function refuseHttpSubscriptions(path: string): ApolloServerPlugin {
  return {
    async requestDidStart() {
      return {
        async didResolveOperation({ operation, response }) {
          if (operation?.operation !== 'subscription') return;
          response.http.status = 400;
          throw new SluiceError(
            ErrorCode.BAD_REQUEST,
            `Subscriptions are not served over HTTP: open a WebSocket to ${path} with the graphql-ws protocol (graphql-transport-ws) and send the subscription there`,
          );
        },
      };
    },
  };
}
