// Direct access to a test control plane's etcd, for what only etcd can do: compaction, which
// makes a watch from an older resourceVersion fail with 410 Gone.
import { readdirSync, readFileSync } from 'node:fs';
import type { ControlPlane } from '../../tools/controlplane/controlplane.js';

/**
 * The etcd URL of `controlPlane`, read from its kube-apiserver's command line (the harness
 * does not hand it out): the process whose arguments name the control plane's directory.
 */
export function etcdUrl(controlPlane: ControlPlane): string {
  for (const pid of readdirSync('/proc').filter((entry) => /^\d+$/.test(entry))) {
    let args: string[];
    try {
      args = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
    } catch {
      continue; // exited meanwhile
    }
    if (!args.some((arg) => arg.includes(controlPlane.dir))) continue;
    const flag = args.find((arg) => arg.startsWith('--etcd-servers='));
    if (flag) return flag.slice('--etcd-servers='.length);
  }
  throw new Error(`no kube-apiserver of the control plane in ${controlPlane.dir} is running`);
}

/** Compacts etcd's history up to `revision` (a resourceVersion): older revisions are gone. */
export async function compactEtcd(controlPlane: ControlPlane, revision: string): Promise<void> {
  const response = await fetch(`${etcdUrl(controlPlane)}/v3/kv/compaction`, {
    method: 'POST',
    body: JSON.stringify({ revision, physical: true }),
  });
  if (!response.ok) throw new Error(`etcd compaction failed: ${String(response.status)} ${await response.text()}`);
}
