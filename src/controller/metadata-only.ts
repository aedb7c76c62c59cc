import { METADATA_ONLY, METADATA_ONLY_LIST } from '../kube/client.js';

/**
 * The apiserver can answer with object metadata alone (PartialObjectMetadata). The operator
 * watches Secrets only to notice that one changed, so it asks for exactly that: no Secret
 * data, of any namespace, ever crosses the wire to it except the Secrets it reads on purpose.
 * test/integration/metadata-only.test.ts pins it: watched Secrets must arrive without data.
 * ConfigMaps are watched the same way: what the data of its own holds is known without it
 * (configmap-contents.ts), a 250 KB users list no longer comes back on every write, and no
 * other ConfigMap's data crosses the wire.
 */
export const METADATA_ONLY_ACCEPT = { list: METADATA_ONLY_LIST, watch: METADATA_ONLY };
