// npm run -s node:image — the operator as the image runs it, for scripts that start it
// themselves (bench/peer-cli.sh): prints the path of a node binary of the image's major
// (fetched once into the cache when this machine's node is another major) and, on the next
// line, the NODE_OPTIONS the shipped Deployment sets.
import { deploymentNodeOptions, imageNode } from './image-node.js';

const { path } = await imageNode();
console.log(`${path}\n${deploymentNodeOptions()}`);
