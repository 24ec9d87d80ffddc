/**
 * Transitional: the dual-write activities live in ./dual-write/ (import from './dual-write/index.js'). This
 * re-export keeps the workflows' type imports compiling until they move to the new path; delete it then.
 */
export * from './dual-write/index.js';
