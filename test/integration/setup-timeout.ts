// Integration tests talk to a real kube-apiserver, and some start or restart one: they get
// minutes rather than Jest's default 5 s. (A project-level `testTimeout` is ignored by Jest.)
import { jest } from '@jest/globals';

jest.setTimeout(120_000);
