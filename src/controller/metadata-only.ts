import { METADATA_ONLY, METADATA_ONLY_LIST } from '../kube/client.js';

/**
 * The apiserver can answer with object metadata alone (PartialObjectMetadata). The operator
 * watches Secrets only to notice that one changed, so it asks for exactly that: no Secret
 * data, of any namespace, ever crosses the wire to it except the Secrets it reads on purpose.
 * test/integration/metadata-only.test.ts pins it: watched Secrets must arrive without data.
 * Its own ConfigMaps are watched the same way: what their data holds is known without it
 * (configmap-contents.ts), and a 250 KB users list no longer comes back on every write.
 */
export const METADATA_ONLY_ACCEPT = { list: METADATA_ONLY_LIST, watch: METADATA_ONLY };
