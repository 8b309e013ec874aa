/**
 * Image references (pure): the transports hpcc accepts and their parsing.
 *
 *   docker://[registry[:port]/]name[:tag][@sha256:<hex>]   Docker Hub defaults:
 *       registry docker.io (index.docker.io is an alias), one-component names get library/,
 *       tag latest when neither tag nor digest is given.
 *   oci:DIR[:tag]                an OCI image layout directory (tag = ref.name annotation)
 *   oci-archive:FILE[:tag]       a tar of an OCI image layout
 *   docker-archive:FILE[:ref]    `docker save` / skopeo output; ref is name:tag or @N (index)
 *
 * Like containers/image, the path of a local transport ends at the first ':'
 * (paths containing ':' cannot be named). Grammar of names and tags follows
 * the distribution reference grammar: components [a-z0-9]+ joined by '.', '_',
 * '__' or '-'+; tags [A-Za-z0-9_][A-Za-z0-9_.-]{0,127}.
 */
import { OciError } from '../errors/index.js';

export const DOCKER_HUB = 'docker.io';

export interface DockerRef {
  transport: 'docker';
  /** e.g. docker.io, ghcr.io, 127.0.0.1:5000 */
  registry: string;
  /** e.g. library/alpine */
  repository: string;
  tag?: string;
  digest?: string;
}

export interface OciLayoutRef {
  transport: 'oci' | 'oci-archive';
  path: string;
  tag?: string;
}

export interface DockerArchiveRef {
  transport: 'docker-archive';
  path: string;
  /** a docker reference (name:tag) from RepoTags */
  ref?: string;
  /** @N: the N-th image in manifest.json */
  index?: number;
}

export type ImageRef = DockerRef | OciLayoutRef | DockerArchiveRef;

const COMPONENT = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$/;
const TAG = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$/;
const DIGEST = /^sha256:[a-f0-9]{64}$/;
const DOMAIN = /^(?:[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)(?:\.(?:[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?))*(?::\d{1,5})?$|^\[[0-9A-Fa-f:.]+\](?::\d{1,5})?$/;
const MAX_REF = 4096;

function bad(ref: string, why: string): OciError {
  return new OciError('HPCC_E_OCI_REFERENCE', `invalid image reference ${JSON.stringify(ref.slice(0, 200))}: ${why}`, {
    hint: 'Use docker://[registry/]name[:tag|@sha256:digest], oci:DIR[:tag], oci-archive:FILE[:tag] or docker-archive:FILE[:name:tag].',
  });
}

/** True when `s` names a transport hpcc knows (as opposed to a local directory). */
export function isImageReference(s: string): boolean {
  return /^(docker:\/\/|oci:|oci-archive:|docker-archive:)/.test(s);
}

/** Is a sha256 digest string well formed ("sha256:" + 64 lowercase hex)? */
export function isDigest(s: string): boolean {
  return DIGEST.test(s);
}

/** Parse the part after docker:// (also usable for names like "alpine:3.19"). */
export function parseDockerName(name: string, whole = name): DockerRef {
  if (name.length === 0) throw bad(whole, 'empty name');
  let rest = name;
  let digest: string | undefined;
  const at = rest.indexOf('@');
  if (at >= 0) {
    digest = rest.slice(at + 1);
    rest = rest.slice(0, at);
    if (!DIGEST.test(digest)) throw bad(whole, `digest must be sha256: followed by 64 lowercase hex digits`);
  }
  let tag: string | undefined;
  const slash = rest.lastIndexOf('/');
  const colon = rest.lastIndexOf(':');
  if (colon > slash) {
    tag = rest.slice(colon + 1);
    rest = rest.slice(0, colon);
    if (!TAG.test(tag)) throw bad(whole, `tag ${JSON.stringify(tag)} is not valid`);
  }
  const parts = rest.split('/');
  let registry = DOCKER_HUB;
  const first = parts[0]!;
  if (parts.length > 1 && (first.includes('.') || first.includes(':') || first === 'localhost' || first !== first.toLowerCase())) {
    if (!DOMAIN.test(first)) throw bad(whole, `registry ${JSON.stringify(first)} is not a host name`);
    registry = first === 'index.docker.io' || first === 'registry-1.docker.io' ? DOCKER_HUB : first;
    parts.shift();
  }
  if (parts.length === 0 || parts.some((p) => !COMPONENT.test(p))) {
    throw bad(whole, 'repository names are lowercase letters, digits and separators (. _ __ -), joined by /');
  }
  if (registry === DOCKER_HUB && parts.length === 1) parts.unshift('library');
  const repository = parts.join('/');
  if (repository.length > 255) throw bad(whole, 'repository name longer than 255 characters');
  const out: DockerRef = { transport: 'docker', registry, repository };
  if (tag !== undefined) out.tag = tag;
  if (digest !== undefined) out.digest = digest;
  if (tag === undefined && digest === undefined) out.tag = 'latest';
  return out;
}

function splitPathTag(rest: string, whole: string): { path: string; tag?: string } {
  const i = rest.indexOf(':');
  const p = i < 0 ? rest : rest.slice(0, i);
  const tag = i < 0 ? '' : rest.slice(i + 1);
  if (p.length === 0) throw bad(whole, 'missing path');
  if (tag === '') return { path: p };
  return { path: p, tag };
}

/** Parse any reference; throws OciError HPCC_E_OCI_REFERENCE. */
export function parseReference(ref: string): ImageRef {
  if (typeof ref !== 'string' || ref.length === 0) throw bad(String(ref), 'empty');
  if (ref.length > MAX_REF) throw bad(ref, `longer than ${MAX_REF} characters`);
  if (ref.includes('\0')) throw bad(ref, 'contains NUL');
  if (ref.startsWith('docker://')) return parseDockerName(ref.slice('docker://'.length), ref);
  if (ref.startsWith('oci-archive:')) return { transport: 'oci-archive', ...splitPathTag(ref.slice(12), ref) };
  if (ref.startsWith('oci:')) {
    const r = splitPathTag(ref.slice(4), ref);
    if (r.tag !== undefined && /[/\s]/.test(r.tag)) throw bad(ref, `tag ${JSON.stringify(r.tag)} is not valid`);
    return { transport: 'oci', ...r };
  }
  if (ref.startsWith('docker-archive:')) {
    const r = splitPathTag(ref.slice(15), ref);
    const out: DockerArchiveRef = { transport: 'docker-archive', path: r.path };
    if (r.tag === undefined) return out;
    if (/^@\d{1,6}$/.test(r.tag)) {
      out.index = Number(r.tag.slice(1));
      return out;
    }
    const d = parseDockerName(r.tag, ref);
    if (d.digest !== undefined) throw bad(ref, 'docker-archive references name:tag, not a digest');
    out.ref = `${d.registry}/${d.repository}:${d.tag}`;
    return out;
  }
  throw bad(ref, 'unknown transport');
}

/** Canonical text: docker://docker.io/library/alpine:latest, oci:DIR:tag, ... */
export function formatReference(r: ImageRef): string {
  switch (r.transport) {
    case 'docker':
      return `docker://${dockerName(r)}`;
    case 'oci':
    case 'oci-archive':
      return `${r.transport}:${r.path}${r.tag !== undefined ? `:${r.tag}` : ''}`;
    case 'docker-archive':
      return `docker-archive:${r.path}${r.ref !== undefined ? `:${r.ref}` : r.index !== undefined ? `:@${r.index}` : ''}`;
  }
}

/** registry/repository[:tag][@digest], e.g. docker.io/library/alpine:3.19 */
export function dockerName(r: DockerRef): string {
  return `${r.registry}/${r.repository}${r.tag !== undefined ? `:${r.tag}` : ''}${r.digest !== undefined ? `@${r.digest}` : ''}`;
}

/** Apptainer's deffile header for a reference ("BootStrap: docker\nFrom: alpine:3.19\n"). */
export function bootstrapOf(r: ImageRef): { bootstrap: string; from: string } {
  switch (r.transport) {
    case 'docker': {
      const short =
        r.registry === DOCKER_HUB && r.repository.startsWith('library/') ? r.repository.slice(8) : `${r.registry === DOCKER_HUB ? '' : r.registry + '/'}${r.repository}`;
      return { bootstrap: 'docker', from: `${short}${r.tag !== undefined ? `:${r.tag}` : ''}${r.digest !== undefined ? `@${r.digest}` : ''}` };
    }
    case 'oci':
    case 'oci-archive':
      return { bootstrap: r.transport, from: `${r.path}${r.tag !== undefined ? `:${r.tag}` : ''}` };
    case 'docker-archive':
      return { bootstrap: 'docker-archive', from: formatReference(r).slice('docker-archive:'.length) };
  }
}
