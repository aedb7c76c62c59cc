/**
 * Which primary objects refer to which watched objects (an HpcCluster to its credentials
 * Secret, say), kept up to date from the primaries' own add, update and delete events, so
 * an event of a watched object finds the primaries to reconcile without a scan of them all.
 * Keys are `namespace/name` strings.
 */
export class ReferenceIndex {
  private readonly referrers = new Map<string, Set<string>>();
  private readonly referencesOf = new Map<string, string[]>();

  /** Records what `primary` refers to now, replacing what it referred to before. */
  set(primary: string, references: readonly string[]): void {
    this.delete(primary);
    if (references.length === 0) return;
    this.referencesOf.set(primary, [...references]);
    for (const reference of references) {
      let set = this.referrers.get(reference);
      if (set === undefined) this.referrers.set(reference, (set = new Set()));
      set.add(primary);
    }
  }

  /** Forgets a deleted primary. */
  delete(primary: string): void {
    for (const reference of this.referencesOf.get(primary) ?? []) {
      const set = this.referrers.get(reference);
      set?.delete(primary);
      if (set?.size === 0) this.referrers.delete(reference);
    }
    this.referencesOf.delete(primary);
  }

  /** The primaries that refer to `reference`. */
  referring(reference: string): string[] {
    return [...(this.referrers.get(reference) ?? [])];
  }
}
