#!/usr/bin/env node
// The CLI is TypeScript run through tsx (a dependency), so `npx tempo-ssl` works right after `npm install`
// with no build step.
import { register } from 'tsx/esm/api';

register();
await import('../cli/main.ts');
