// See global-setup.js for why this is plain JS handing over to tsx.
import { tsImport } from 'tsx/esm/api';

export default async function globalTeardown() {
  const { stopSharedControlPlane } = await tsImport('./shared-control-plane.ts', import.meta.url);
  await stopSharedControlPlane();
}
