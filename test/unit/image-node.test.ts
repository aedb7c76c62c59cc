// Benches run the operator on the image's Node.js major: which major the Dockerfile names, and
// which release of it the cache or the registry offers.
import { describe, expect, it } from '@jest/globals';
import { imageNodeMajor, newestOfMajor } from '../../tools/node/image-node.js';

describe('imageNodeMajor', () => {
  it("reads the major from the Dockerfile's NODE_IMAGE argument", () => {
    expect(imageNodeMajor('# syntax=docker/dockerfile:1\nARG NODE_IMAGE=node:24-slim\nFROM ${NODE_IMAGE} AS build\n')).toBe(24);
    expect(imageNodeMajor('ARG NODE_IMAGE=node:22.11.0-bookworm-slim\n')).toBe(22);
  });

  it('names what is missing when the Dockerfile has no node base image', () => {
    expect(() => imageNodeMajor('FROM gcr.io/distroless/nodejs24\n')).toThrow('the Dockerfile has no ARG NODE_IMAGE=node:<major>');
  });

  it('reads the shipped Dockerfile', () => {
    expect(imageNodeMajor()).toBeGreaterThanOrEqual(20);
  });
});

describe('newestOfMajor', () => {
  it('compares versions as numbers, not as text, and keeps to the major', () => {
    expect(newestOfMajor(['24.9.0', '24.22.3', '24.10.1', '26.1.0', '22.30.0'], 24)).toBe('24.22.3');
    expect(newestOfMajor(['v24.2.10', 'v24.2.9', 'v24.2.10.building-x', 'README'], 24)).toBe('v24.2.10');
  });

  it('is undefined when no version of the major is there', () => {
    expect(newestOfMajor(['22.1.0'], 24)).toBeUndefined();
    expect(newestOfMajor([], 24)).toBeUndefined();
  });
});
