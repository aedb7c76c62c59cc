// node:http for the product, through require(). An ES module's `import ... from 'node:http'`
// makes Node build the module's namespace from every export, and since Node 22 the WebSocket,
// CloseEvent and MessageEvent exports are getters that load undici (Node's whole fetch), http2
// and worker_threads: about 3 MB of an idle operator's RSS for code it never runs. require()
// reads only what is used. eslint.config.js refuses the import elsewhere in src/.
import { createRequire } from 'node:module';
import type * as Http from 'node:http';

export const http = createRequire(import.meta.url)('node:http') as typeof Http;
