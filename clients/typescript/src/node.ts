// Node services: native gRPC over HTTP/2 (default), or grpc-web over HTTP/1.1.
import { createGrpcTransport, createGrpcWebTransport } from "@connectrpc/connect-node";
import { bearer, createClients, type ClientOptions, type IntegrationsClients } from "./clients.js";

export * from "./index.js";

export interface NodeClientOptions extends ClientOptions {
  /** `grpc` (HTTP/2, the default) or `grpc-web` (HTTP/1.1, as a browser would call). */
  protocol?: "grpc" | "grpc-web";
}

/** The four clients from Node. */
export function createNodeClients(options: NodeClientOptions): IntegrationsClients {
  const interceptors = [bearer(options.token), ...(options.interceptors ?? [])];
  const transport =
    options.protocol === "grpc-web"
      ? createGrpcWebTransport({ baseUrl: options.baseUrl, httpVersion: "1.1", interceptors })
      : createGrpcTransport({ baseUrl: options.baseUrl, interceptors });
  return createClients(transport);
}
