// `npm run bench`: every benchmark of the project, one after the other.
import { benchProvider } from './provider.js';

await benchProvider();
