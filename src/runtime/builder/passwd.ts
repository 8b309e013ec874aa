/**
 * Generated /etc/passwd and /etc/group: the image's own files with the
 * caller's entry replaced (same name or same id) or appended. The caller's
 * entry comes from one host look-up per launch (facts.ts), never from the
 * container, so 65k ranks do not each ask LDAP.
 */
import type { GroupEntry, UserEntry } from './types.js';

const MAX_FIELD = 4096;

function clean(s: string): string {
  // A field may not hold the separators of the file format.
  return s.replace(/[:\n\r\0]/g, ' ').slice(0, MAX_FIELD);
}

function lines(text: string | null): string[] {
  if (!text) return [];
  return text.split('\n').filter((l) => l !== '');
}

/** The image's passwd with the caller's line (home = the container's $HOME) replaced or appended. */
export function generatePasswd(image: string | null, user: UserEntry, homeDst: string, shell: string): string {
  const entry = [clean(user.name), 'x', String(user.uid), String(user.gid), clean(user.gecos), clean(homeDst), clean(shell)].join(':');
  const out: string[] = [];
  let placed = false;
  for (const l of lines(image)) {
    const f = l.split(':');
    if (f[0] === user.name || f[2] === String(user.uid)) {
      if (!placed) out.push(entry);
      placed = true;
      continue;
    }
    out.push(l);
  }
  if (!placed) out.push(entry);
  return out.join('\n') + '\n';
}

/** The image's group with the caller's primary group replaced or appended (members kept). */
export function generateGroup(image: string | null, group: GroupEntry, userName: string | null): string {
  const out: string[] = [];
  let placed = false;
  for (const l of lines(image)) {
    const f = l.split(':');
    if (f[0] === group.name || f[2] === String(group.gid)) {
      if (!placed) {
        const members = (f[3] ?? '').split(',').filter((m) => m !== '');
        out.push([clean(group.name), 'x', String(group.gid), members.join(',')].join(':'));
      }
      placed = true;
      continue;
    }
    out.push(l);
  }
  if (!placed) out.push([clean(group.name), 'x', String(group.gid), userName ? clean(userName) : ''].join(':'));
  return out.join('\n') + '\n';
}

/** Parse one passwd line (host side, facts.ts). */
export function parsePasswdLine(line: string): UserEntry | null {
  const f = line.split(':');
  if (f.length < 7) return null;
  const uid = Number(f[2]);
  const gid = Number(f[3]);
  if (!Number.isInteger(uid) || !Number.isInteger(gid) || f[2] === '' || f[3] === '') return null;
  return { name: f[0]!, uid, gid, gecos: f[4]!, home: f[5]!, shell: f[6]! };
}

/** Parse one group line (host side, facts.ts). */
export function parseGroupLine(line: string): GroupEntry | null {
  const f = line.split(':');
  if (f.length < 3 || f[2] === '') return null;
  const gid = Number(f[2]);
  if (!Number.isInteger(gid)) return null;
  return { name: f[0]!, gid };
}

/** Find the entry for an id in a passwd or group file's text. */
export function findById<T extends { uid?: number; gid?: number }>(text: string, parse: (l: string) => T | null, key: 'uid' | 'gid', id: number): T | null {
  for (const l of text.split('\n')) {
    const e = parse(l);
    if (e && e[key] === id) return e;
  }
  return null;
}
