import { describe, expect, it } from '@jest/globals';
import { failureHint } from '../../src/controller/informer.js';
import { KubeApiError } from '../../src/kube/client.js';

describe('failureHint', () => {
  const path = '/apis/hpc.shanhe.com/v1alpha1/hpcclusters';
  it.each([
    [404, 'is the CustomResourceDefinition installed?'],
    [403, 'may not list/watch hpcclusters; apply the rules in deploy/rbac'],
    [401, 'check the kubeconfig or the service-account token'],
  ])('tells what to check on HTTP %i', (code, hint) => {
    expect(failureHint(new KubeApiError(code, undefined, 'failed', `GET ${path}`), 'hpcclusters', path)).toContain(hint);
  });

  it('says nothing of errors that retrying may mend', () => {
    expect(failureHint(new KubeApiError(503, 'ServiceUnavailable', 'unavailable', `GET ${path}`), 'hpcclusters', path)).toBeUndefined();
    expect(failureHint(new Error('socket hang up'), 'hpcclusters', path)).toBeUndefined();
  });
});
