/**
 * RegistryError: a failed exchange with an OCI distribution registry, carrying
 * the HTTP status and the registry's own error code (distribution spec,
 * "Error Codes": {"errors":[{"code","message","detail"}]}).
 * Exit code 81 (network band 80..95).
 */
import { HpccError, type HpccErrorOptions } from '../../errors/index.js';

export const REGISTRY_EXIT = 81;

export interface RegistryErrorInfo {
  status?: number;
  registryCode?: string;
  registry?: string;
  url?: string;
}

export class RegistryError extends HpccError {
  readonly status?: number;
  readonly registryCode?: string;
  constructor(code: string, message: string, info: RegistryErrorInfo = {}, opts: HpccErrorOptions = {}) {
    const details: Record<string, unknown> = {};
    if (info.status !== undefined) details.status = info.status;
    if (info.registryCode !== undefined) details.registryCode = info.registryCode;
    if (info.registry !== undefined) details.registry = info.registry;
    super(code, message, { exitCode: REGISTRY_EXIT, details, ...opts });
    if (info.status !== undefined) this.status = info.status;
    if (info.registryCode !== undefined) this.registryCode = info.registryCode;
  }
}

/** Parse the distribution-spec error body, bounded: the first error's code and message. */
export function parseRegistryErrorBody(body: string): { code?: string; message?: string } {
  try {
    const j = JSON.parse(body.slice(0, 65536)) as { errors?: Array<{ code?: unknown; message?: unknown }> };
    const e = Array.isArray(j?.errors) ? j.errors[0] : undefined;
    const out: { code?: string; message?: string } = {};
    if (typeof e?.code === 'string') out.code = e.code.slice(0, 100);
    if (typeof e?.message === 'string') out.message = e.message.slice(0, 300);
    return out;
  } catch {
    return {};
  }
}

/** Turn an HTTP error status into a RegistryError with a clear message and hint. */
export function registryHttpError(
  status: number,
  what: string,
  registry: string,
  body: string,
  cause?: unknown,
): RegistryError {
  const reg = parseRegistryErrorBody(body);
  const detail = reg.code ? ` (${reg.code}${reg.message ? `: ${reg.message}` : ''})` : '';
  const info: RegistryErrorInfo = { status, registry, ...(reg.code ? { registryCode: reg.code } : {}) };
  const o = cause === undefined ? {} : { cause };
  if (status === 401) {
    return new RegistryError('HPCC_E_REGISTRY_UNAUTHORIZED', `${what}: ${registry} requires authentication (HTTP 401)${detail}`, info, {
      hint: `Log in with: hpcc registry login ${registry} -u USER --password-stdin (or check the stored credentials).`,
      ...o,
    });
  }
  if (status === 403) {
    return new RegistryError('HPCC_E_REGISTRY_DENIED', `${what}: access denied by ${registry} (HTTP 403)${detail}`, info, {
      hint: 'Your credentials do not grant pull access to this repository; check the name and your permissions.',
      ...o,
    });
  }
  if (status === 404) {
    return new RegistryError('HPCC_E_REGISTRY_NOT_FOUND', `${what}: not found on ${registry} (HTTP 404)${detail}`, info, {
      hint: 'Check the image name and tag (e.g. docker://alpine:3.20); private images need `hpcc registry login`.',
      ...o,
    });
  }
  if (status === 429) {
    return new RegistryError('HPCC_E_REGISTRY_RATE_LIMITED', `${what}: ${registry} is rate limiting requests (HTTP 429)${detail}`, info, {
      hint: 'Wait and retry later, or log in: authenticated pulls usually get a higher limit.',
      ...o,
    });
  }
  if (status >= 500) {
    return new RegistryError('HPCC_E_REGISTRY_SERVER', `${what}: ${registry} failed with HTTP ${status}${detail}`, info, {
      hint: 'The registry has a problem; retry later.',
      ...o,
    });
  }
  return new RegistryError('HPCC_E_REGISTRY_HTTP', `${what}: unexpected HTTP ${status} from ${registry}${detail}`, info, {
    hint: 'Check the registry address and that it speaks the OCI distribution API (/v2/).',
    ...o,
  });
}
