#!/usr/bin/env node
// The `earshot` executable. The project is TypeScript run directly through tsx's loader,
// so there is no build step between `npm install` and `npm start`.
import { register } from 'tsx/esm/api';

register();
await import('../apps/cli/main.ts');
