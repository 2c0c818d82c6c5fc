// WatchHealthEvents as an async iterator that survives disconnects: it reconnects with the last
// seq it delivered, so no change is lost or repeated across the gap.
import { Code, ConnectError, type Client } from "@connectrpc/connect";
import type { MessageInitShape } from "@bufbuild/protobuf";
import {
  HealthService,
  WatchHealthEventsRequestSchema,
  type HealthEvent,
} from "../gen/founderhouse/integrations/v1/health_pb.js";
import { errorInfo } from "./errors.js";

export interface WatchOptions {
  /** Stops the iterator (it then returns without an error). */
  signal?: AbortSignal;
  /** First reconnect delay; doubles per failed attempt up to `maxDelayMs`. Default 250 ms. */
  initialDelayMs?: number;
  /** Default 5 s. */
  maxDelayMs?: number;
  /** Called before each reconnect with the error that ended the stream and the attempt number. */
  onReconnect?: (err: ConnectError, attempt: number) => void;
}

/** Errors after which the same request may work again: the stream broke, not the request. */
const TRANSIENT = new Set([
  Code.Unavailable,
  Code.Unknown,
  Code.Internal,
  Code.Aborted,
  Code.DeadlineExceeded,
  Code.ResourceExhausted,
]);

/**
 * Yields the workspace's health events, reconnecting after transient failures with
 * `after_seq` = the last change delivered. Starting from `afterSeq` 0 yields a snapshot first
 * (`snapshot: true`); a disconnect before any change arrived starts again with a fresh snapshot
 * (so a half-sent snapshot is completed, never cut short), and so does a resume point the
 * server no longer retains (OUT_OF_RANGE EVENTS_EXPIRED). Other errors (UNAUTHENTICATED,
 * INVALID_ARGUMENT, ...) are thrown.
 */
export async function* watchHealthEvents(
  health: Client<typeof HealthService>,
  request: MessageInitShape<typeof WatchHealthEventsRequestSchema> = {},
  options: WatchOptions = {},
): AsyncGenerator<HealthEvent, void, undefined> {
  const { signal, initialDelayMs = 250, maxDelayMs = 5_000, onReconnect } = options;
  let cursor = BigInt(request.afterSeq ?? 0);
  let attempt = 0;
  while (!signal?.aborted) {
    try {
      for await (const event of health.watchHealthEvents({ ...request, afterSeq: cursor }, { signal })) {
        attempt = 0;
        if (!event.snapshot) {
          if (event.seq <= cursor) continue; // already delivered before the reconnect
          cursor = event.seq;
        }
        yield event;
      }
      // The server ends streams only with an error; a clean end (a proxy) is a disconnect too.
      throw new ConnectError("the stream ended", Code.Unavailable);
    } catch (err) {
      if (signal?.aborted) return;
      const e = ConnectError.from(err);
      if (e.code === Code.Canceled) {
        // Not our signal (checked above): the connection under the stream was reset.
      } else if (e.code === Code.OutOfRange && errorInfo(e).reason === "EVENTS_EXPIRED") {
        cursor = 0n;
      } else if (!TRANSIENT.has(e.code)) {
        throw e;
      }
      attempt += 1;
      onReconnect?.(e, attempt);
      await sleep(Math.min(maxDelayMs, initialDelayMs * 2 ** (attempt - 1)), signal);
    }
  }
}

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(done, ms);
    signal?.addEventListener("abort", done, { once: true });
    function done() {
      clearTimeout(timer);
      signal?.removeEventListener("abort", done);
      resolve();
    }
  });
}
