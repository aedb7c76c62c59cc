// npm run manifests: writes the generated manifests (tools/manifests.ts) whose committed content differs.
import { staleManifests, writeManifest } from './manifests.js';

const stale = staleManifests();
for (const manifest of stale) {
  writeManifest(manifest);
  console.log(`wrote ${manifest.path}`);
}
if (stale.length === 0) console.log('every generated manifest is up to date');
