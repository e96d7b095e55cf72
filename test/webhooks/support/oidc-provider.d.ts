// The few parts of oidc-provider 9 (no bundled types) the webhook tests use.
declare module 'oidc-provider' {
  import type { IncomingMessage, ServerResponse } from 'node:http';

  interface ClientCredentialsToken {
    readonly clientId: string;
    readonly isExpired: boolean;
    destroy(): Promise<void>;
  }
  export default class Provider {
    constructor(issuer: string, configuration: Record<string, unknown>);
    callback(): (req: IncomingMessage, res: ServerResponse) => void;
    readonly ClientCredentials: { find(value: string): Promise<ClientCredentialsToken | undefined> };
  }
}
