// The four service clients behind one transport, with the caller's bearer token on every call.
import { createClient, type Client, type Interceptor, type Transport } from "@connectrpc/connect";
import { ConnectorService } from "../gen/founderhouse/integrations/v1/connectors_pb.js";
import { HealthService } from "../gen/founderhouse/integrations/v1/health_pb.js";
import { IntegrationService } from "../gen/founderhouse/integrations/v1/integrations_pb.js";
import { OAuthService } from "../gen/founderhouse/integrations/v1/oauth_pb.js";

/** A token, or a function returning the current one (called before every call, so it may refresh). */
export type TokenSource = string | (() => string | undefined | Promise<string | undefined>);

/** Options of the client factories: where the service is and who is calling. */
export interface ClientOptions {
  /** The gRPC port's base URL, e.g. `http://127.0.0.1:50051`. */
  baseUrl: string;
  /** The caller's JWT (without "Bearer "); calls go without one when it is absent or empty. */
  token?: TokenSource;
  /** Extra interceptors, run after the one that sets the token. */
  interceptors?: Interceptor[];
}

export interface IntegrationsClients {
  integrations: Client<typeof IntegrationService>;
  oauth: Client<typeof OAuthService>;
  health: Client<typeof HealthService>;
  connectors: Client<typeof ConnectorService>;
}

/** An interceptor setting `authorization: Bearer <token>` from a token or a token getter. */
export function bearer(token: TokenSource | undefined): Interceptor {
  return (next) => async (req) => {
    const value = typeof token === "function" ? await token() : token;
    if (value) req.header.set("authorization", `Bearer ${value}`);
    return next(req);
  };
}

/** The four clients over one transport (which should carry `bearer(token)`). */
export function createClients(transport: Transport): IntegrationsClients {
  return {
    integrations: createClient(IntegrationService, transport),
    oauth: createClient(OAuthService, transport),
    health: createClient(HealthService, transport),
    connectors: createClient(ConnectorService, transport),
  };
}
