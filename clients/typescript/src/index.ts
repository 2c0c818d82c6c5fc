// The package's entry point: the generated messages and services, and the convenience layer.
// Transports live in ./web (browsers, grpc-web) and ./node (Node, gRPC or grpc-web).
export * from "../gen/founderhouse/integrations/v1/common_pb.js";
export * from "../gen/founderhouse/integrations/v1/integrations_pb.js";
export * from "../gen/founderhouse/integrations/v1/oauth_pb.js";
export * from "../gen/founderhouse/integrations/v1/health_pb.js";
export * from "../gen/founderhouse/integrations/v1/connectors_pb.js";
export {
  BadRequestSchema,
  ErrorInfoSchema,
  RequestInfoSchema,
  RetryInfoSchema,
} from "../gen/google/rpc/error_details_pb.js";
export { bearer, createClients, type ClientOptions, type IntegrationsClients, type TokenSource } from "./clients.js";
export { codeName, errorInfo, type ErrorDetails, type FieldViolation } from "./errors.js";
export { watchHealthEvents, type WatchOptions } from "./watch.js";
