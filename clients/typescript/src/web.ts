// Browsers: grpc-web over fetch (the service's gRPC port speaks it, with CORS).
import { createGrpcWebTransport } from "@connectrpc/connect-web";
import { bearer, createClients, type ClientOptions, type IntegrationsClients } from "./clients.js";

export * from "./index.js";

/** The four clients over grpc-web from a browser. */
export function createWebClients(options: ClientOptions): IntegrationsClients {
  return createClients(
    createGrpcWebTransport({
      baseUrl: options.baseUrl,
      interceptors: [bearer(options.token), ...(options.interceptors ?? [])],
    }),
  );
}
