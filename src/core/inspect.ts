/**
 * `hpcc inspect`: labels, deffile, runscript, test, environment and help of
 * an image, read through hpcc's own readers (no mount). For a SIF, the
 * `inspect-metadata.json` object is used when present (as Apptainer does),
 * else the image's /.singularity.d; the deffile object wins for the deffile.
 * A sandbox directory is read directly.
 */
import * as fs from 'node:fs/promises';
import { addContext } from '../errors/index.js';
import { SifDataType } from '../formats/sif/index.js';
import { collectMetadata, parseInspectMetadata, type InspectMetadata } from './metadata.js';
import { openSifRootfs } from './image.js';
import { directoryTreeView, squashfsTreeView } from './tree-views.js';

export interface InspectResult {
  metadata: InspectMetadata;
  /** Where the attributes came from. */
  source: 'sif-metadata-object' | 'image-tree' | 'sandbox';
}

const MAX_OBJECT = 16 * 1024 * 1024;

export async function inspectImage(image: string): Promise<InspectResult> {
  let st;
  try {
    st = await fs.stat(image);
  } catch (e) {
    throw addContext(`inspect ${image}`, e);
  }
  if (st.isDirectory()) {
    return { metadata: await collectMetadata(directoryTreeView(image)), source: 'sandbox' };
  }
  const img = await openSifRootfs(image);
  try {
    const metaObj = img.sif.objectsByType(SifDataType.GenericJSON).find((d) => d.name === 'inspect-metadata.json');
    let metadata: InspectMetadata | null = null;
    let source: InspectResult['source'] = 'image-tree';
    if (metaObj) {
      metadata = parseInspectMetadata((await img.sif.readObject(metaObj, MAX_OBJECT)).toString('utf8'));
      if (metadata) source = 'sif-metadata-object';
    }
    if (!metadata) metadata = await collectMetadata(squashfsTreeView(img.rootfs));
    const def = img.sif.objectsByType(SifDataType.Deffile)[0];
    if (def) metadata.data.attributes.deffile = (await img.sif.readObject(def, MAX_OBJECT)).toString('utf8').replace(/\n+$/, '');
    return { metadata, source };
  } finally {
    await img.close();
  }
}
