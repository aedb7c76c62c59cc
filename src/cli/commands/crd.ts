import { crdYaml } from '../../api/crd.js';
import type { Command } from '../command.js';

export const crdCommand: Command = {
  name: 'crd',
  summary: 'Print the HpcCluster CustomResourceDefinition as YAML',
  usage: `Usage: hpc-user-operator crd

Prints the CRD generated from the same schema the operator validates with.
Install it with: hpc-user-operator crd | kubectl apply --server-side -f -`,
  options: {},
  run() {
    process.stdout.write(crdYaml());
    return Promise.resolve(0);
  },
};
