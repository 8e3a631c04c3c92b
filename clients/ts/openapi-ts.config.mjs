// @hey-api/openapi-ts settings for .ci/clients: the fetch client (Node 20 has fetch), typed
// models and one SDK function per operation, named by its operationId.
import { defineConfig } from '@hey-api/openapi-ts';

export default defineConfig({
  input: process.env.EVD_SPEC,
  output: { path: 'src/client' },
  plugins: ['@hey-api/client-fetch', '@hey-api/typescript', '@hey-api/sdk'],
});
