/**
 * Apptainer-compatible image metadata: what `inspect` shows and what the
 * `inspect-metadata.json` SIF object holds. Built from the image's
 * /.singularity.d (labels.json, runscript, test, startscript,
 * runscript.help, Singularity deffile, env/*.sh) through a small read-only
 * tree interface, so the same code serves a directory on disk and a
 * squashfs image read without mounting.
 */

/** Read-only view of an image tree (a directory or a squashfs image). */
export interface TreeView {
  /** File contents, or null when the path does not exist or is not a regular file (after following links). */
  readFile(path: string, maxBytes: number): Promise<Buffer | null>;
  /** Names in a directory, or null when it does not exist. */
  listDir(path: string): Promise<string[] | null>;
}

export interface AppAttributes {
  environment?: Record<string, string>;
  helpfile?: string;
  labels?: Record<string, string>;
  runscript?: string;
  test?: string;
}

/** Apptainer's inspect attributes (field names as in its JSON). */
export interface InspectAttributes {
  apps?: Record<string, AppAttributes>;
  environment?: Record<string, string>;
  helpfile?: string;
  deffile?: string;
  labels?: Record<string, string>;
  runscript?: string;
  startscript?: string;
  test?: string;
}

export interface InspectMetadata {
  data: { attributes: InspectAttributes };
  type: 'container';
}

const MAX_META_FILE = 4 * 1024 * 1024;
const SD = '.singularity.d';

function text(buf: Buffer | null): string | undefined {
  if (buf === null) return undefined;
  return buf.toString('utf8').replace(/\n+$/, '');
}

/** Parse labels.json leniently: only string values are kept (others stringified). */
export function parseLabels(raw: string | undefined): Record<string, string> | undefined {
  if (raw === undefined || raw.trim() === '') return undefined;
  let parsed: unknown;
  try {
    parsed = JSON.parse(raw);
  } catch {
    return undefined;
  }
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) return undefined;
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(parsed as Record<string, unknown>)) {
    out[k] = typeof v === 'string' ? v : JSON.stringify(v);
  }
  return out;
}

/** Collect /.singularity.d metadata from an image tree. */
export async function collectMetadata(tree: TreeView): Promise<InspectMetadata> {
  const attrs: InspectAttributes = {};
  const read = async (p: string) => text(await tree.readFile(`${SD}/${p}`, MAX_META_FILE));
  const labels = parseLabels(await read('labels.json'));
  if (labels) attrs.labels = labels;
  const deffile = await read('Singularity');
  if (deffile !== undefined) attrs.deffile = deffile;
  const runscript = await read('runscript');
  if (runscript !== undefined) attrs.runscript = runscript;
  const test = await read('test');
  if (test !== undefined) attrs.test = test;
  const startscript = await read('startscript');
  if (startscript !== undefined) attrs.startscript = startscript;
  const helpfile = await read('runscript.help');
  if (helpfile !== undefined) attrs.helpfile = helpfile;
  const envNames = (await tree.listDir(`${SD}/env`)) ?? [];
  const environment: Record<string, string> = {};
  // Apptainer's inspect shows the docker-derived and %environment scripts.
  for (const name of envNames.filter((n) => /^(10-docker.*|9\d-environment)\.sh$/.test(n)).sort()) {
    const body = await read(`env/${name}`);
    if (body !== undefined) environment[`/${SD}/env/${name}`] = body;
  }
  if (Object.keys(environment).length > 0) attrs.environment = environment;
  return { data: { attributes: attrs }, type: 'container' };
}

/** Parse an `inspect-metadata.json` SIF object; null when it is not the expected shape. */
export function parseInspectMetadata(raw: string): InspectMetadata | null {
  let parsed: unknown;
  try {
    parsed = JSON.parse(raw);
  } catch {
    return null;
  }
  const data = (parsed as { data?: { attributes?: unknown } } | null)?.data;
  if (!data || typeof data.attributes !== 'object' || data.attributes === null) return null;
  return { data: { attributes: data.attributes as InspectAttributes }, type: 'container' };
}
