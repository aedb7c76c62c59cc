// Jest loads global setup through Node's resolver, which cannot map the TypeScript sources'
// `.js` imports to their `.ts` files; tsx can, so this plain-JS entry hands over to it.
import { tsImport } from 'tsx/esm/api';

export default async function globalSetup() {
  const { startSharedControlPlane } = await tsImport('./shared-control-plane.ts', import.meta.url);
  await startSharedControlPlane();
}
