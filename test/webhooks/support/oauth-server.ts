import type { IncomingMessage, ServerResponse } from 'node:http';
import { createServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import Provider from 'oidc-provider';
import type { Issued } from './pki.js';

/**
 * A real OAuth2 authorization server (oidc-provider) over HTTPS with a certificate of the
 * test's CA, allowing one client the client_credentials grant. `tokenRequests` counts POSTs
 * to its token endpoint; `check` validates a bearer token the way a resource server would
 * (the provider's own store), `revoke` ends one early.
 */
export interface OAuthServer {
  readonly tokenUrl: string;
  tokenRequests: number;
  check(token: string): Promise<boolean>;
  revoke(token: string): Promise<void>;
  close(): Promise<void>;
}

export async function startOAuthServer(tls: Issued, client: { id: string; secret: string }, ttlS = 600): Promise<OAuthServer> {
  let callback: ((req: IncomingMessage, res: ServerResponse) => void) | null = null;
  const state = { tokenRequests: 0 };
  const server = createServer({ cert: tls.cert, key: tls.key }, (req, res) => {
    if (req.method === 'POST' && req.url?.startsWith('/token')) state.tokenRequests++;
    callback?.(req, res);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  const issuer = `https://127.0.0.1:${port}`;
  const provider = new Provider(issuer, {
    clients: [
      {
        client_id: client.id,
        client_secret: client.secret,
        grant_types: ['client_credentials'],
        redirect_uris: [],
        response_types: [],
        token_endpoint_auth_method: 'client_secret_basic',
      },
    ],
    features: { clientCredentials: { enabled: true }, devInteractions: { enabled: false } },
    ttl: { ClientCredentials: ttlS },
  });
  callback = provider.callback();
  return {
    tokenUrl: `${issuer}/token`,
    get tokenRequests() {
      return state.tokenRequests;
    },
    set tokenRequests(n: number) {
      state.tokenRequests = n;
    },
    async check(token) {
      const found = await provider.ClientCredentials.find(token);
      return Boolean(found && !found.isExpired && found.clientId === client.id);
    },
    async revoke(token) {
      const found = await provider.ClientCredentials.find(token);
      await found?.destroy();
    },
    close: async () => {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
