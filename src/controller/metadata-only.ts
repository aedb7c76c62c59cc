import { setHeaderOptions, type ConfigurationOptions, type KubeConfig } from '@kubernetes/client-node';

/**
 * The apiserver can answer with object metadata alone (PartialObjectMetadata). The operator
 * watches Secrets only to notice that one changed, so it asks for exactly that: no Secret
 * data, of any namespace, ever crosses the wire to it except the Secrets it reads on purpose.
 */
const PARTIAL_OBJECT_METADATA = 'application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1';
const PARTIAL_OBJECT_METADATA_LIST = 'application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1';

/** Options for a list call that returns metadata only. */
export function metadataOnlyList(): ConfigurationOptions {
  return setHeaderOptions('Accept', PARTIAL_OBJECT_METADATA_LIST);
}

/**
 * A view of `kubeConfig` whose watches (client-node's Watch) return metadata only. Watch takes
 * no request options: it builds each request from KubeConfig.applyToFetchOptions, so a view
 * that adds the Accept header there is the only way in (a client-node detail, not its API).
 * test/integration/metadata-only.test.ts pins it: watched Secrets must arrive without data.
 */
export function metadataOnlyWatches(kubeConfig: KubeConfig): KubeConfig {
  const view = Object.create(kubeConfig) as KubeConfig;
  view.applyToFetchOptions = async (options) => {
    const init = await kubeConfig.applyToFetchOptions(options);
    (init.headers as Headers).set('Accept', PARTIAL_OBJECT_METADATA);
    return init;
  };
  return view;
}
