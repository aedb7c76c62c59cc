import { describe, expect, it } from '@jest/globals';
import { ApiException } from '@kubernetes/client-node';
import { failureHint } from '../../src/controller/informer.js';

describe('failureHint', () => {
  const path = '/apis/hpc.shanhe.com/v1alpha1/hpcclusters';
  it.each([
    [404, 'is the CustomResourceDefinition installed?'],
    [403, 'may not list/watch hpcclusters; apply the rules in deploy/rbac'],
    [401, 'check the kubeconfig or the service-account token'],
  ])('tells what to check on HTTP %i', (code, hint) => {
    expect(failureHint(new ApiException(code, 'failed', '', {}), 'hpcclusters', path)).toContain(hint);
  });

  it('says nothing of errors that retrying may mend', () => {
    expect(failureHint(new ApiException(503, 'unavailable', '', {}), 'hpcclusters', path)).toBeUndefined();
    expect(failureHint(new Error('socket hang up'), 'hpcclusters', path)).toBeUndefined();
  });
});
