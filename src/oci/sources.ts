/**
 * One entry point from a reference to an ImageSource. Local transports are
 * handled here; `docker://` is added by the registry client (issue 4's
 * registry part) through registerTransport, so callers only ever use
 * resolveSource().
 */
import { OciArchiveSource, DockerArchiveSource } from './local/archives.js';
import { OciLayoutSource } from './local/layout.js';
import { RegistrySource } from './registry-source.js';
import { formatReference, parseReference, type ImageRef } from './reference.js';
import type { ImageSource } from './types.js';

type Factory = (ref: ImageRef, text: string) => ImageSource;
const extra = new Map<string, Factory>();

/** Let another module (the registry client) serve a transport, e.g. 'docker'. */
export function registerTransport(transport: ImageRef['transport'], f: Factory): void {
  extra.set(transport, f);
}

/** Parse `ref` and return the source that resolves it. */
export function resolveSource(ref: string | ImageRef): ImageSource {
  const r = typeof ref === 'string' ? parseReference(ref) : ref;
  const text = formatReference(r);
  const f = extra.get(r.transport);
  if (f) return f(r, text);
  switch (r.transport) {
    case 'oci':
      return new OciLayoutSource(r.path, r.tag, text);
    case 'oci-archive':
      return new OciArchiveSource(r.path, r.tag, text);
    case 'docker-archive':
      return new DockerArchiveSource(r.path, { ...(r.ref !== undefined ? { ref: r.ref } : {}), ...(r.index !== undefined ? { index: r.index } : {}) }, text);
    case 'docker':
      return new RegistrySource(r);
  }
}
