// sui-receipts/upstream: a fetch that records one usage event per outgoing call to a named
// provider, attributed to the inbound request being served (found through AsyncLocalStorage,
// so handlers keep their signatures). Outside a metered request, or where AsyncLocalStorage is
// missing, it is the plain fetch and records nothing. Edge-safe.
import type { UsageClient } from '../client/index.ts';
import { sha256 } from '@noble/hashes/sha2.js';
import { utf8ToBytes } from '@noble/hashes/utils.js';
import { bytesToHex } from '../encoding/hex.ts';
import { ACTION_PATTERN, MAX_ACTION_LENGTH, MAX_REQUEST_ID_LENGTH } from '../event/limits.ts';
import { loggingOnError, useRequestContext } from './common.ts';

export interface UpstreamOptions {
  /** The provider's name, e.g. `openai`: the action is `upstream.<provider>` unless `action` says otherwise. */
  provider: string;
  action?: string;
  /** Units of one call (default 1 for an ok answer, else 0), e.g. from a usage header. */
  units?: (response: Response) => number;
  /** Default: the client of the inbound request's meter. */
  client?: UsageClient;
  /** The fetch to wrap (default globalThis.fetch, looked up at call time). */
  fetch?: typeof fetch;
  /** Calls that could not be metered; default: logged with console.error (rate-limited, see common.ts). */
  onError?: (error: Error) => void;
}

export function meteredFetch(options: UpstreamOptions): typeof fetch {
  const provider = options?.provider;
  if (typeof provider !== 'string' || !ACTION_PATTERN.test(provider) || provider.length > 40) {
    throw new Error(
      `meteredFetch: provider must be a short name of lowercase letters, digits, '.', '_' or '-' (e.g. "openai"), got ${JSON.stringify(provider)}`,
    );
  }
  const action = options.action ?? `upstream.${provider}`;
  if (!ACTION_PATTERN.test(action) || action.length > MAX_ACTION_LENGTH)
    throw new Error(`meteredFetch: action "${action}" must match ${ACTION_PATTERN} (≤ ${MAX_ACTION_LENGTH} characters)`);
  const storage = useRequestContext();
  const base = (...args: Parameters<typeof fetch>) => (options.fetch ?? globalThis.fetch)(...args);
  if (!storage) return base as typeof fetch; // no AsyncLocalStorage here: attribution is off

  const onError = options.onError ?? loggingOnError(console, `meteredFetch(${provider})`);
  const report = (err: unknown) => {
    try {
      onError(err instanceof Error ? err : new Error(String(err)));
    } catch {}
  };

  return (async (input: Parameters<typeof fetch>[0], init?: Parameters<typeof fetch>[1]) => {
    const inbound = storage.getStore();
    if (!inbound) return base(input, init);
    const ts = Date.now();
    const t0 = performance.now();
    const n = ++inbound.upstreamCalls;
    const settle = (status: number, response: Response | undefined, error: string | undefined) => {
      try {
        if (inbound.skipped()) return;
        const who = inbound.identity();
        if (!who)
          return report(
            new Error(`meteredFetch(${provider}): the inbound request's namespace or caller is not known; the call was not metered`),
          );
        let units = response?.ok ? 1 : 0;
        if (response && options.units) units = options.units(response);
        const derived = `${inbound.requestId}.${provider}.${n}`;
        const metadata: Record<string, string | number> = {
          upstream: provider,
          inbound_request_id: inbound.requestId,
          method: (init?.method ?? (input instanceof Request ? input.method : 'GET')).toUpperCase(),
          host: hostOf(input),
          status,
          duration_ms: Math.round((performance.now() - t0) * 100) / 100,
        };
        if (error) metadata.error = error;
        (options.client ?? inbound.client).record({
          // Derived from the inbound id: a repeated inbound request repeats, not adds, its calls.
          request_id: derived.length <= MAX_REQUEST_ID_LENGTH ? derived : stableShortId(derived),
          namespace: who.namespace,
          caller: who.caller,
          action,
          units,
          ts,
          metadata,
        });
      } catch (err) {
        report(err);
      }
    };
    let response: Response;
    try {
      response = await base(input, init);
    } catch (err) {
      settle(0, undefined, (err as Error)?.name === 'AbortError' || (err as Error)?.name === 'TimeoutError' ? 'aborted' : 'network');
      throw err;
    }
    settle(response.status, response, undefined);
    return response;
  }) as typeof fetch;
}

/**
 * An id too long for a leaf (a long inbound id): its SHA-256, so it is still the same for the
 * same inbound request and call (a random one would add the call again on each repeat).
 */
function stableShortId(derived: string): string {
  return `upstream-${bytesToHex(sha256(utf8ToBytes(derived))).slice(0, 48)}`;
}

/** The host only: never the path or query (they can hold ids and keys), never userinfo. */
function hostOf(input: Parameters<typeof fetch>[0]): string {
  try {
    return new URL(input instanceof Request ? input.url : String(input)).host;
  } catch {
    return '';
  }
}
